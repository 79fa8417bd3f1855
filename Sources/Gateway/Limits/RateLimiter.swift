import Synchronization

/// Token buckets by key (a user id, a client address) for one kind of action. The
/// table is bounded: buckets that have refilled are forgotten first (they are the same
/// as new ones); a table full of busy keys refuses new keys rather than grow.
final class RateLimiter: Sendable {
    /// Actions per minute with this burst; nil means unlimited.
    struct Rule: Sendable, Equatable {
        var perMinute: Int
        var burst: Int
    }

    private let rule: Rule?
    private let maxKeys: Int
    private let buckets = Mutex<[String: TokenBucket]>([:])

    init(_ rule: Rule?, maxKeys: Int = 100_000) {
        self.rule = rule
        self.maxKeys = maxKeys
    }

    /// Takes one action's token for `key`: nil when allowed, else when to try again.
    func take(_ key: String, now: ContinuousClock.Instant = .now) -> Duration? {
        guard let rule else { return nil }
        return buckets.withLock { buckets in
            if buckets[key] == nil {
                if buckets.count >= maxKeys { buckets = buckets.filter { !$0.value.isFull(at: now) } }
                guard buckets.count < maxKeys else { return .seconds(1) }
                buckets[key] = TokenBucket(capacity: rule.burst, perMinute: rule.perMinute, now: now)
            }
            return buckets[key]!.take(now: now)
        }
    }

    var trackedKeys: Int { buckets.withLock { $0.count } }
}
