import Foundation

/// A stored WhatsApp message on its way to an answer, claimed by one relay.
public struct WhatsAppMessage: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Stored by the webhook; not yet a turn.
        case received
        /// A turn (`turnID`, the `submissions`th) of `sessionID` is sent or to be sent.
        case submitted
        /// `reply` is what the user is sent; `partsSent` of its parts went out.
        case answered
        /// The reply went out: finished.
        case sent
        /// The Graph API refused the reply for good: finished, with the error.
        case failed

        public var isFinished: Bool { self == .sent || self == .failed }
    }

    public var inbound: WhatsAppInbound
    public var state: State
    public var sessionID: UUID?
    public var turnID: UUID?
    /// Turns tried for this message so far; each gets its own id (`WhatsAppTurnID`).
    public var submissions: Int
    public var reply: String?
    public var partsSent: Int
    /// Claims so far, this one included: the retry schedule's step.
    public var attempts: Int
    /// The claim: only its holder writes the row.
    public var claim: UUID
    /// Why the row was put back last time, or why it failed.
    public var lastError: String?

    public init(
        inbound: WhatsAppInbound,
        state: State = .received,
        sessionID: UUID? = nil,
        turnID: UUID? = nil,
        submissions: Int = 0,
        reply: String? = nil,
        partsSent: Int = 0,
        attempts: Int = 1,
        claim: UUID = UUID(),
        lastError: String? = nil
    ) {
        self.inbound = inbound
        self.state = state
        self.sessionID = sessionID
        self.turnID = turnID
        self.submissions = submissions
        self.reply = reply
        self.partsSent = partsSent
        self.attempts = attempts
        self.claim = claim
        self.lastError = lastError
    }
}

/// Where a turn stands, read from the store: how a relay that finds a message
/// `submitted` (after a restart, or a failed wait) knows whether its turn may still be
/// answered, and so whether a new turn would be a second answer.
public enum TurnStanding: Sendable, Equatable {
    /// Its reply is stored.
    case answered(String)
    /// Queued: in the broker or with a worker, and not past its deadline.
    case open
    /// It ended without a reply (an error; or queued past its deadline with nobody
    /// holding it, which the reading ends in the ledger so that no late copy of it is
    /// generated): it will never be answered.
    case ended
    /// The broker certainly never took it (a refused publish): nothing was asked.
    case withdrawn
    /// No gateway entered it (never sent, or sent while the database was down).
    case unknown
}

extension TurnStanding {
    /// What a turn's stored reply and ledger row amount to; `overdue`: it was queued,
    /// past its deadline (with a margin for clocks) with nobody holding it, and is ended now.
    public init(reply: String?, state: TurnLedgerState?, overdue: Bool) {
        if let reply {
            self = .answered(reply)
            return
        }
        switch state {
        case nil: self = .unknown
        case .queued: self = overdue ? .ended : .open
        // Answered without a reply row cannot happen (one statement writes both); read
        // as open, so that the turn is asked again and its reply read then.
        case .answered: self = .open
        case .failed: self = .ended
        case .withdrawn: self = .withdrawn
        }
    }
}

/// Where turns stand: a turn of a message that arrives again (the relay after a
/// restart, the older bot's retried `message_id`) is asked again only when its turn
/// may still be answered.
public protocol TurnStandings: Sendable {
    /// Where the turn stands. A turn queued past its deadline that nobody holds is
    /// ended by the reading (settled as `expired` in the ledger), so that a copy of it
    /// still in the broker is not generated after a new turn was sent in its place.
    func standing(ofTurn turnID: UUID) async throws(StoreError) -> TurnStanding
}

/// The WhatsApp channel's messages (the `whatsapp_messages` table): the webhook
/// stores each message before it answers 200, and a relay takes each through its
/// states — a turn, its reply, the reply sent to the Graph API — so that a message
/// once acknowledged is answered after any restart, and answered once.
///
/// A relay *claims* a message before working on it: the claim is a token and a lease
/// (`next_attempt_at`), renewed while it works. Only the oldest unfinished message of
/// a sender can be claimed, so a sender's messages are answered one at a time, in the
/// order they were stored.
public protocol WhatsAppInbox: TurnStandings {
    /// Stores the messages not stored before (by message id); returns the ids of the
    /// ones it stored. A redelivered webhook stores nothing.
    func store(_ messages: [WhatsAppInbound]) async throws(StoreError) -> Set<String>
    /// Claims up to `limit` due messages, each the oldest unfinished of its sender.
    func claim(limit: Int, lease: Duration) async throws(StoreError) -> [WhatsAppMessage]
    /// Extends the claim; false when it was lost (the lease ran out and another took it).
    func renew(_ message: WhatsAppMessage, lease: Duration) async throws(StoreError) -> Bool
    /// Writes the message's progress; false when the claim was lost.
    func save(_ message: WhatsAppMessage) async throws(StoreError) -> Bool
    /// Gives the claim up; the message is due again after `retryIn`.
    func release(_ message: WhatsAppMessage, error: String?, retryIn: Duration) async throws(StoreError)
    /// Messages not finished yet.
    func backlog() async throws(StoreError) -> Int
}
