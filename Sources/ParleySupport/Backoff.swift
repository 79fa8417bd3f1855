/// Exponential backoff with full jitter: each delay is random in
/// `[current/2, current]`, and `current` doubles up to `maximum`.
public struct Backoff: Sendable {
    public let initial: Duration
    public let maximum: Duration
    private var current: Duration

    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
        self.current = initial
    }

    public mutating func next() -> Duration {
        let delay = current
        current = min(current * 2, maximum)
        let fraction = Double.random(in: 0.5...1.0)
        return delay * fraction
    }

    public mutating func reset() {
        current = initial
    }

    /// The delay before retry number `attempt` (1-based) of a schedule kept elsewhere
    /// (an outbox row's attempts): initial · 2^(attempt−1), at most the maximum, with
    /// the same jitter.
    public func delay(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        return min(initial * (1 << exponent), maximum) * Double.random(in: 0.5...1.0)
    }
}
