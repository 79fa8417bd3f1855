import Foundation

/// Where a turn stands in its session's order (the `turns` table).
public enum TurnLedgerState: String, Sendable, Codable {
    /// Entered by a gateway; in the broker or with a worker.
    case queued
    /// Its reply is stored.
    case answered
    /// It ended with an error reply (model failure, cancelled, expired, refused).
    case failed
    /// The broker certainly never took it.
    case withdrawn
}

/// What a worker may do with a turn it received.
public enum TurnClaim: Sendable, Equatable {
    /// Generate it: this attempt holds the turn. `attemptNumber` counts the attempts
    /// so far (above 1, an earlier attempt may have streamed text the client must drop).
    case granted(attemptNumber: Int)
    /// An earlier turn of the session is still queued: wait for it.
    case waitForEarlierTurn
    /// Another attempt of the same turn (a copy of an unconfirmed publish) is generating it.
    case heldByAnotherAttempt
    /// It ended already.
    case settled(TurnLedgerState)
}

/// Every turn of every session in the order its gateway accepted it, and which attempt
/// generates it: the order of a session's turns holds for the whole system — across
/// gateways, restarts, redeliveries and copies — not only within one gateway's memory
/// (docs/decisions.md, "Turn order across gateways").
///
/// - A gateway `register`s a turn before publishing it (its place in the session's
///   order) and `withdraw`s it when the broker certainly never took it.
/// - A worker `claim`s a turn before generating: granted only when every earlier turn
///   of the session has ended (or passed its deadline) and no other live attempt holds
///   it. A redelivery (the broker has given up on the earlier delivery) takes the turn
///   over from an attempt that may still be running; that attempt finds out when it
///   `renew`s its hold, and its reply is refused by the store (fenced by the attempt id).
/// - It `settle`s a turn that ended with an error reply, and `release`s one it gives
///   back to the queue.
public protocol TurnLedger: Sendable {
    func register(_ turn: TurnEnvelope) async throws(StoreError)
    func withdraw(turnID: UUID) async throws(StoreError)
    func claim(_ turn: TurnEnvelope, attempt: UUID, takeover: Bool, holdFor: Duration) async throws(StoreError) -> TurnClaim
    /// Extends the hold; false when another attempt took the turn over (or it ended).
    func renew(turnID: UUID, attempt: UUID, holdFor: Duration) async throws(StoreError) -> Bool
    /// Ends the turn without a stored reply; false when this attempt no longer holds it
    /// (then its error must not be published: another attempt answers the turn).
    func settle(turnID: UUID, attempt: UUID, as state: TurnLedgerState) async throws(StoreError) -> Bool
    /// Gives the turn up so that its next delivery may claim it at once.
    func release(turnID: UUID, attempt: UUID) async throws(StoreError)
}

extension TurnEnvelope {
    /// The deadline a ledger entry gets when the envelope carries none (turns from
    /// gateways that set no deadline): it must not block the session for ever.
    public var ledgerDeadline: Date { deadline ?? sentAt.addingTimeInterval(300) }
}
