import Foundation
import ParleySupport
import Shared

/// One attempt at generating a turn: one delivery of it to this worker.
struct TurnAttempt: Sendable {
    /// Names this attempt in the `TurnLedger`; its reply is stored only while it holds
    /// the turn. A redelivery (the broker has given up on the earlier delivery of the
    /// same copy) takes the turn over at once rather than wait for that delivery's hold
    /// to run out.
    let ledger: LedgerAttempt
    /// False once the delivery can no longer be settled (this worker's consumer
    /// reconnected, and the broker gave the turn to someone else): the attempt stops.
    var isCurrent: @Sendable () -> Bool = { true }
    /// Set once this attempt asked the store to record a reply: from then on the turn
    /// may be answered even if the store's answer was lost.
    let recordAttempted = Locked(false)

    init(takeover: Bool = false, copy: UUID? = nil, isCurrent: @escaping @Sendable () -> Bool = { true }) {
        self.ledger = LedgerAttempt(takeover: takeover, copy: copy)
        self.isCurrent = isCurrent
    }

    var id: UUID { ledger.id }
}

/// How a worker holds turns in the ledger.
struct TurnHolding: Sendable {
    let ledger: any TurnLedger
    /// How long a hold lasts without renewal: a worker that died mid-turn blocks the
    /// session's next turn at most this long (a redelivery takes over at once).
    var holdFor: Duration = .seconds(15)
    /// How often a generating attempt renews its hold and so learns it was taken over.
    var renewEvery: Duration = .seconds(3)
    /// The longest pause between two looks at a turn that must wait.
    var longestWaitPause: Duration = .milliseconds(400)
}

extension TurnHolding {
    /// Holds the turn while the generation runs: returns false as soon as the attempt
    /// is no longer current or another attempt took the turn over; returns true when
    /// cancelled (the generation ended). A database outage keeps the hold as it is
    /// (the store's fence still protects the reply).
    func keep(_ turnID: UUID, _ attempt: TurnAttempt) async -> Bool {
        let tick = Duration.milliseconds(200)
        var sinceRenewal = Duration.zero
        while true {
            do { try await Task.sleep(for: tick) } catch { return true }
            guard attempt.isCurrent() else { return false }
            sinceRenewal += tick
            guard sinceRenewal >= renewEvery else { continue }
            sinceRenewal = .zero
            if let held = try? await ledger.renew(turnID: turnID, attempt: attempt.ledger, holdFor: holdFor), !held { return false }
        }
    }
}
