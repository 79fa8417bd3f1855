import Synchronization

/// What the sockets of `parley-load sockets` saw: sockets open and attached, and for
/// each session the time its turn was sent and the times its reply reached each socket.
final class FanoutRecorder: Sendable {
    struct Counts: Sendable {
        var opened = 0
        var failed = 0
        var sessions = 0
        var listeners = 0
        var errors: [String: Int] = [:]
        var lastFailure: String?
    }

    struct Turn: Sendable {
        var sentAt: Int64?
        var arrivals: [Int64] = []
    }

    let start: ContinuousClock.Instant
    private let state = Mutex<(counts: Counts, turns: [String: Turn])>((Counts(), [:]))

    init(start: ContinuousClock.Instant) { self.start = start }

    func now() -> Int64 { ContinuousClock.now.microseconds(since: start) }

    func opened() { state.withLock { $0.counts.opened += 1 } }
    func failed(_ why: String) {
        state.withLock {
            $0.counts.failed += 1
            $0.counts.lastFailure = why
        }
    }
    func sessionReady() { state.withLock { $0.counts.sessions += 1 } }
    func listenerAttached() { state.withLock { $0.counts.listeners += 1 } }
    func error(_ code: String) { state.withLock { $0.counts.errors[code, default: 0] += 1 } }

    func sent(session: String, at time: Int64) { state.withLock { $0.turns[session, default: Turn()].sentAt = time } }
    func replied(session: String, at time: Int64) { state.withLock { $0.turns[session, default: Turn()].arrivals.append(time) } }

    var counts: Counts { state.withLock { $0.counts } }
    var turns: [String: Turn] { state.withLock { $0.turns } }

    /// Sessions whose reply has reached `sockets` sockets.
    func complete(sockets: Int) -> Int { state.withLock { $0.turns.values.filter { $0.arrivals.count >= sockets }.count } }
}
