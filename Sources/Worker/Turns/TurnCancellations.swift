import Foundation
import ParleySupport
import Shared
import Synchronization

/// Which turns the users asked to cancel. The worker working on a turn waits on its
/// gate; a cancel for a turn not (yet) here is remembered for a while, so a turn
/// cancelled while still in the queue is not generated when it arrives.
final class TurnCancellations: Sendable {
    private struct State {
        /// Every attempt at a turn running here (a copy or a redelivery of a turn can
        /// run beside the first), each with its own gate.
        var running: [UUID: (session: UUID, gates: [Gate])] = [:]
        var cancelledEarly: [UUID: (session: UUID, at: ContinuousClock.Instant)] = [:]
    }

    private let state = Mutex(State())
    private let memory: Duration

    init(memory: Duration = .seconds(600)) {
        self.memory = memory
    }

    /// Registers an attempt at a turn that starts now; its gate opens when the turn is
    /// cancelled. Pass the gate to `end`.
    func begin(_ turnID: UUID, session: UUID) -> Gate {
        let gate = Gate()
        let cancelled = state.withLock { state -> Bool in
            if state.running[turnID]?.session == session {
                state.running[turnID]?.gates.append(gate)
            } else {
                state.running[turnID] = (session, [gate])
            }
            return state.cancelledEarly.removeValue(forKey: turnID)?.session == session
        }
        if cancelled { gate.open() }
        return gate
    }

    /// The attempt that got `gate` ended; other attempts at the turn stay registered.
    func end(_ turnID: UUID, _ gate: Gate) {
        state.withLock { state in
            state.running[turnID]?.gates.removeAll { $0 === gate }
            if state.running[turnID]?.gates.isEmpty == true { state.running[turnID] = nil }
        }
    }

    /// Cancels a turn of `session` if it is running here, or remembers the request.
    /// A request naming another session than the turn's is ignored.
    func cancel(_ turnID: UUID, session: UUID, now: ContinuousClock.Instant = .now) {
        let gates = state.withLock { state -> [Gate] in
            if let running = state.running[turnID] { return running.session == session ? running.gates : [] }
            let memory = self.memory
            state.cancelledEarly = state.cancelledEarly.filter { $0.value.at.duration(to: now) < memory }
            // Bounded for everyone and per session: a flood of cancels for turns that
            // never come (rate-limited per user at the gateway) cannot crowd out others.
            let ofSession = state.cancelledEarly.values.lazy.filter { $0.session == session }.count
            if state.cancelledEarly.count < 100_000, ofSession < 8 { state.cancelledEarly[turnID] = (session, now) }
            return []
        }
        for gate in gates { gate.open() }
    }
}
