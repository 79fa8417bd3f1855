/// Groups streamed text into `delta` envelopes, so that a fast model does not cost
/// one broker message per token: text is held until `maxCharacters` have gathered
/// or `maxDelay` has passed since the last delta went out. The first text of a turn
/// goes out at once (time to first delta matters most). Time is the rule that
/// matters to a reader; the size only bounds a message, so it is large: with 64
/// characters a fast model's answer cost a broker message (and a hop in worker and
/// gateway) per 64 characters that no one could read apart anyway.
struct DeltaCoalescer: Sendable {
    var maxCharacters = 1024
    var maxDelay: Duration = .milliseconds(30)
    /// The worker's budget of deltas a second, which lengthens `maxDelay` when many
    /// streams run at once (nil: none).
    var budget: DeltaBudget?
    private var pending = ""
    private var lastSent: ContinuousClock.Instant?

    init(maxCharacters: Int = 1024, maxDelay: Duration = .milliseconds(30)) {
        self.maxCharacters = maxCharacters
        self.maxDelay = maxDelay
    }

    /// Adds text; returns what should go out now, if anything.
    mutating func add(_ text: String, now: ContinuousClock.Instant) -> String? {
        pending += text
        let delay = budget?.interval(atLeast: maxDelay) ?? maxDelay
        let due = lastSent.map { $0.duration(to: now) >= delay } ?? true
        guard due || pending.count >= maxCharacters else { return nil }
        lastSent = now
        return take()
    }

    /// What is still held (at the end of the stream).
    mutating func flush() -> String? {
        take()
    }

    /// Forgets held text (the stream starts over).
    mutating func discard() {
        pending = ""
        lastSent = nil
    }

    private mutating func take() -> String? {
        guard !pending.isEmpty else { return nil }
        defer { pending = "" }
        return pending
    }
}
