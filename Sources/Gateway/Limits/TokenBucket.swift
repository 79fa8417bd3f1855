/// A token bucket: `capacity` tokens, refilled at `perSecond`; each action takes one.
/// A value type with a pure transition, tested with plain values.
struct TokenBucket: Sendable, Equatable {
    let capacity: Double
    let perSecond: Double
    private(set) var tokens: Double
    private(set) var updated: ContinuousClock.Instant

    init(capacity: Int, perMinute: Int, now: ContinuousClock.Instant) {
        self.capacity = Double(max(capacity, 1))
        self.perSecond = Double(max(perMinute, 1)) / 60
        self.tokens = self.capacity
        self.updated = now
    }

    /// Takes a token: nil when there was one, else how long until there is.
    mutating func take(now: ContinuousClock.Instant) -> Duration? {
        refill(now: now)
        guard tokens >= 1 else { return .seconds((1 - tokens) / perSecond) }
        tokens -= 1
        return nil
    }

    /// Full again (an idle bucket is the same as a new one, and may be forgotten).
    func isFull(at now: ContinuousClock.Instant) -> Bool {
        var copy = self
        copy.refill(now: now)
        return copy.tokens >= capacity
    }

    private mutating func refill(now: ContinuousClock.Instant) {
        let elapsed = max(updated.duration(to: now), .zero).timeInterval
        tokens = min(capacity, tokens + elapsed * perSecond)
        updated = now
    }
}
