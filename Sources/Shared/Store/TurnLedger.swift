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

/// The error reply a turn ended with, kept so that any later attempt (a redelivery
/// after the first one's publish failed) sends the same one. Fixed text per code.
public struct SettledFailure: Sendable, Equatable {
    public var code: ErrorCode
    public var message: String

    public init(code: ErrorCode, message: String) {
        self.code = code
        self.message = message
    }
}

/// Who asks the ledger: one attempt at a turn (one delivery of one published copy).
public struct LedgerAttempt: Sendable, Equatable {
    public var id: UUID
    /// The delivery is a redelivery: the broker gave up on the earlier delivery of the
    /// same copy, whose attempt may take over.
    public var takeover: Bool
    /// Which published copy of the turn this delivery is (`TurnEnvelope.copyID`): a
    /// redelivered copy takes over only from an attempt at the same copy, never from
    /// a live attempt at another copy.
    public var copy: UUID?

    public init(id: UUID = UUID(), takeover: Bool = false, copy: UUID? = nil) {
        self.id = id
        self.takeover = takeover
        self.copy = copy
    }
}

/// What a worker may do with a turn it received.
public enum TurnClaim: Sendable, Equatable {
    /// Generate it: this attempt holds the turn. `attemptNumber` counts the attempts
    /// so far (above 1, an earlier attempt may have streamed text the client must drop).
    case granted(attemptNumber: Int)
    /// An earlier turn of the session is still open: wait for it.
    case waitForEarlierTurn
    /// Another attempt of the same turn (a copy of an unconfirmed publish) is generating it.
    case heldByAnotherAttempt
    /// It ended already; with the error reply it ended with, if it failed.
    case settled(TurnLedgerState, SettledFailure?)
}

/// Every turn of every session in the order its gateway accepted it, and which attempt
/// generates it: the order of a session's turns holds for the whole system — across
/// gateways, restarts, redeliveries and copies — not only within one gateway's memory
/// (docs/decisions.md, "Turn order across gateways").
///
/// - A gateway `register`s a turn before publishing it (its place in the session's
///   order) and `withdraw`s it when the broker certainly never took it. A withdraw
///   leaves the turn `withdrawn` even when it finds no entry: the register may have
///   been cut at its time limit and still commit later, and must then find the turn
///   withdrawn instead of entering a turn that blocks its session until its deadline.
/// - A worker `claim`s a turn before generating: granted only when every earlier turn
///   of the session has ended and no other live attempt holds it. A redelivery (the
///   broker has given up on the earlier delivery of the same copy) takes the turn over
///   from that delivery's attempt, which may still be running; it finds out when its
///   delivery goes stale or it `renew`s its hold, and the store refuses its reply
///   (`record` is fenced by the attempt id).
/// - It `settle`s a turn that ended with an error reply, and `release`s one it gives
///   back to the queue.
///
/// An earlier turn is *open* while it is `queued` with no stored answer, and either
/// its deadline is ahead or an attempt still holds it. Turns entered by a gateway are
/// ordered by `seq`; a turn a worker had to enter itself (its gateway could not reach
/// the database) is ordered against the others by the gateways' `sent_at`.
public protocol TurnLedger: Sendable {
    func register(_ turn: TurnEnvelope) async throws(StoreError)
    func withdraw(_ turn: TurnEnvelope) async throws(StoreError)
    func claim(_ turn: TurnEnvelope, attempt: LedgerAttempt, holdFor: Duration) async throws(StoreError) -> TurnClaim
    /// Extends the hold; false when another attempt took the turn over (or it ended).
    func renew(turnID: UUID, attempt: LedgerAttempt, holdFor: Duration) async throws(StoreError) -> Bool
    /// Ends the turn without a stored reply; false when this attempt may not end it
    /// (then its error must not be published: another attempt answers the turn).
    func settle(turnID: UUID, attempt: LedgerAttempt, as state: TurnLedgerState, failure: SettledFailure?) async throws(StoreError) -> Bool
    /// Gives the turn up so that its next delivery may claim it at once.
    func release(turnID: UUID, attempt: LedgerAttempt) async throws(StoreError)
}

extension TurnEnvelope {
    /// The deadline a ledger entry gets when the envelope carries none (turns from
    /// gateways that set no deadline): it must not block the session for ever.
    public var ledgerDeadline: Date { deadline ?? sentAt.addingTimeInterval(300) }
}
