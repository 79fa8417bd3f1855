import Foundation
import Shared
import Synchronization

/// Which turns the users asked to cancel. The worker working on a turn waits on its
/// gate; a cancel for a turn not (yet) here is remembered for a while, so a turn
/// cancelled while still in the queue is not generated when it arrives.
final class TurnCancellations: Sendable {
    private struct State {
        var running: [UUID: (session: UUID, gate: Gate)] = [:]
        var cancelledEarly: [UUID: (session: UUID, at: ContinuousClock.Instant)] = [:]
    }

    private let state = Mutex(State())
    private let memory: Duration

    init(memory: Duration = .seconds(600)) {
        self.memory = memory
    }

    /// Registers a turn that starts now; its gate opens when it is cancelled.
    func begin(_ turnID: UUID, session: UUID) -> Gate {
        let gate = Gate()
        let cancelled = state.withLock { state -> Bool in
            state.running[turnID] = (session, gate)
            return state.cancelledEarly.removeValue(forKey: turnID)?.session == session
        }
        if cancelled { gate.open() }
        return gate
    }

    func end(_ turnID: UUID) {
        _ = state.withLock { $0.running.removeValue(forKey: turnID) }
    }

    /// Cancels a turn of `session` if it is running here, or remembers the request.
    /// A request naming another session than the turn's is ignored.
    func cancel(_ turnID: UUID, session: UUID, now: ContinuousClock.Instant = .now) {
        let gate = state.withLock { state -> Gate? in
            if let running = state.running[turnID] { return running.session == session ? running.gate : nil }
            let memory = self.memory
            state.cancelledEarly = state.cancelledEarly.filter { $0.value.at.duration(to: now) < memory }
            if state.cancelledEarly.count < 10_000 { state.cancelledEarly[turnID] = (session, now) }
            return nil
        }
        gate?.open()
    }
}
