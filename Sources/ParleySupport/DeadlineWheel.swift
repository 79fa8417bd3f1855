import Synchronization

/// The deadlines of every `withTimeout` in the process, checked by one task.
///
/// A time limit per call used to be a task of its own sleeping for the limit: under
/// load that is a timer armed and cancelled per database call, and each is a wake of
/// the timer thread. Here a call enters its deadline in a table, and one task looks at
/// the table every `tick` while it holds any: entering and leaving is a lock and a
/// dictionary update. A limit fires up to one tick late, which for limits of seconds
/// is nothing.
public final class DeadlineWheel: Sendable {
    public static let shared = DeadlineWheel(tick: .milliseconds(50))

    public struct Token: Hashable, Sendable {
        fileprivate let id: UInt64
    }

    private struct Entry {
        var deadline: ContinuousClock.Instant
        var fire: @Sendable () -> Void
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var lastID: UInt64 = 0
        var ticking = false
    }

    private let tick: Duration
    private let state = Mutex(State())

    public init(tick: Duration) {
        self.tick = tick
    }

    /// Calls `fire` once `deadline` has passed, unless `remove` comes first.
    public func add(deadline: ContinuousClock.Instant, fire: @escaping @Sendable () -> Void) -> Token {
        let (id, startTicking) = state.withLock { state -> (UInt64, Bool) in
            state.lastID += 1
            state.entries[state.lastID] = Entry(deadline: deadline, fire: fire)
            defer { state.ticking = true }
            return (state.lastID, !state.ticking)
        }
        if startTicking {
            // The checking task runs while deadlines are pending and ends with the
            // last: a process at rest has no timer. (Unstructured, as the timer of
            // `withTimeout` was: see docs/decisions.md, "Structured concurrency".)
            Task { await self.check() }
        }
        return Token(id: id)
    }

    public func remove(_ token: Token) {
        _ = state.withLock { $0.entries.removeValue(forKey: token.id) }
    }

    /// Deadlines not yet fired or removed.
    public var pending: Int { state.withLock { $0.entries.count } }

    private func check() async {
        while true {
            try? await Task.sleep(for: tick)
            let now = ContinuousClock.now
            let (due, goOn) = state.withLock { state -> ([@Sendable () -> Void], Bool) in
                var due: [@Sendable () -> Void] = []
                for (id, entry) in state.entries where entry.deadline <= now {
                    due.append(entry.fire)
                    state.entries[id] = nil
                }
                if state.entries.isEmpty { state.ticking = false }
                return (due, state.ticking)
            }
            for fire in due { fire() }
            if !goOn { return }
        }
    }
}
