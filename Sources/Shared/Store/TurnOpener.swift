import Foundation

/// What a worker learns and takes when a turn arrives: the session, a reply stored
/// before (a redelivery), and — when the turn may be generated now — the turn taken
/// for the attempt with what its prompt is made of, read as the take saw the session.
public struct TurnOpening: Sendable, Equatable {
    public struct Taken: Sendable, Equatable {
        /// The attempts so far, this one included (`TurnClaim.granted`).
        public var attemptNumber: Int
        public var material: PromptMaterial

        public init(attemptNumber: Int, material: PromptMaterial) {
            self.attemptNumber = attemptNumber
            self.material = material
        }
    }

    public var start: TurnStart
    /// Nil when the turn was not taken: it has a stored reply, it may not be taken
    /// (`mayTake`), its session is missing, another user's or no longer active, or
    /// the ledger would not grant it now — `TurnLedger.claim` then says why.
    public var taken: Taken?

    public init(start: TurnStart, taken: Taken?) {
        self.start = start
        self.taken = taken
    }
}

/// Opens a turn at a worker: `TurnStart`, the ledger's take and `PromptMaterial`,
/// which on PostgreSQL are one statement (`PostgresTurnOpener`) instead of three
/// round trips. The take happens only when the turn has no stored reply and its
/// session exists, belongs to `turn.userID` and is active, so a turn refused for one
/// of those reasons is never held.
public protocol TurnOpener: Sendable {
    /// `mayTake` false (the turn is past its deadline): only reads, never takes.
    func open(
        _ turn: TurnEnvelope,
        attempt: LedgerAttempt,
        holdFor: Duration,
        historyLimit: Int,
        mayTake: Bool
    ) async throws(StoreError) -> TurnOpening
}

/// The same steps one call each, for a store and a ledger that are not one database
/// (the in-memory ones of the unit tests).
public struct StepwiseTurnOpener: TurnOpener {
    public let store: any ConversationStore
    public let ledger: any TurnLedger

    public init(store: any ConversationStore, ledger: any TurnLedger) {
        self.store = store
        self.ledger = ledger
    }

    public func open(
        _ turn: TurnEnvelope,
        attempt: LedgerAttempt,
        holdFor: Duration,
        historyLimit: Int,
        mayTake: Bool
    ) async throws(StoreError) -> TurnOpening {
        let start = try await store.turnStart(session: turn.sessionID, turn: turn.turnID)
        guard mayTake, start.storedReply == nil, let session = start.session, session.userID == turn.userID, session.status == .active,
            case .granted(let number) = try await ledger.claim(turn, attempt: attempt, holdFor: holdFor)
        else { return TurnOpening(start: start, taken: nil) }
        let material = try await store.promptMaterial(session: turn.sessionID, historyLimit: historyLimit)
        return TurnOpening(start: start, taken: .init(attemptNumber: number, material: material))
    }
}
