import Synchronization

/// How many `delta` messages a second one worker may send in all, shared by its
/// turns: the grouping interval of each stream grows with the streams under way, so
/// that a worker holding a thousand turns does not send a delta per stream every
/// 30 ms (25,000 broker messages a second, which the broker, the gateways and the
/// worker could not carry). With few streams the interval stays `DELTA_MAX_DELAY_MS`.
final class DeltaBudget: Sendable {
    /// Deltas per second for the whole worker; 0: no budget.
    let perSecond: Int
    private let streams = Atomic<Int>(0)

    init(perSecond: Int) {
        self.perSecond = perSecond
    }

    /// A turn's stream begins.
    func open() { streams.add(1, ordering: .relaxed) }

    /// A turn's stream has ended.
    func close() { streams.subtract(1, ordering: .relaxed) }

    var openStreams: Int { streams.load(ordering: .relaxed) }

    /// The grouping interval for each stream now: `base`, or longer when the streams
    /// under way would together exceed the budget.
    func interval(atLeast base: Duration) -> Duration {
        guard perSecond > 0 else { return base }
        return max(base, .seconds(Double(openStreams) / Double(perSecond)))
    }
}
