import Synchronization

/// Collects every client's turns, and counts what the live progress line shows.
final class LoadRecorder: Sendable {
    struct Counts: Sendable {
        var sent = 0
        var finished = 0
        var errors = 0
        var connected = 0
        var connectFailures = 0
        var startFailures = 0
        var sessions = 0
        /// Replies of turns no socket waited for: answered twice, or not ours.
        var unexpectedReplies = 0
        /// Errors that named no turn (a refused start, a socket-wide error), by code.
        var otherErrors: [String: Int] = [:]
    }

    let start: ContinuousClock.Instant
    private let state = Mutex<(turns: [TurnTiming], counts: Counts, lastConnectError: String?, firstUnexpected: String?)>(([], Counts(), nil, nil))

    init(start: ContinuousClock.Instant) {
        self.start = start
        state.withLock { $0.turns.reserveCapacity(1 << 16) }
    }

    /// Microseconds since the run began.
    func now() -> Int64 { ContinuousClock.now.microseconds(since: start) }

    func sent() { state.withLock { $0.counts.sent += 1 } }

    func finished(_ turn: TurnTiming) {
        state.withLock {
            $0.turns.append(turn)
            $0.counts.finished += 1
            if turn.errorCode != nil { $0.counts.errors += 1 }
        }
    }

    func connected() { state.withLock { $0.counts.connected += 1 } }

    func connectFailed(_ description: String) {
        state.withLock {
            $0.counts.connectFailures += 1
            $0.lastConnectError = description
        }
    }

    func unexpectedReply(_ frame: String) {
        state.withLock {
            $0.counts.unexpectedReplies += 1
            if $0.firstUnexpected == nil { $0.firstUnexpected = String(frame.prefix(300)) }
        }
    }

    func sessionStarted() { state.withLock { $0.counts.sessions += 1 } }

    func otherError(code: String, start: Bool) {
        state.withLock {
            $0.counts.otherErrors[code, default: 0] += 1
            if start { $0.counts.startFailures += 1 }
        }
    }

    var counts: Counts { state.withLock { $0.counts } }
    var lastConnectError: String? { state.withLock { $0.lastConnectError } }
    var firstUnexpectedReply: String? { state.withLock { $0.firstUnexpected } }

    /// The turns finished at or after `from` (µs), for the progress line.
    func turns(finishedSince from: Int64) -> [TurnTiming] {
        state.withLock { state in
            var recent: [TurnTiming] = []
            for turn in state.turns.reversed() {
                if turn.finishedAt < from { break }
                recent.append(turn)
            }
            return recent
        }
    }

    var allTurns: [TurnTiming] { state.withLock { $0.turns } }
}
