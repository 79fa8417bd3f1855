import Foundation

/// A chat session as the store keeps it.
public struct SessionRecord: Sendable, Equatable {
    public enum Status: String, Sendable, Codable {
        case active, completed, abandoned
    }

    public var id: UUID
    public var userID: String
    public var topicID: Int64?
    public var courseID: Int64?
    public var status: Status
    public var startedAt: Date
    public var completedAt: Date?

    public init(
        id: UUID,
        userID: String,
        topicID: Int64? = nil,
        courseID: Int64? = nil,
        status: Status = .active,
        startedAt: Date = Date(),
        completedAt: Date? = nil
    ) {
        self.completedAt = completedAt
        self.id = id
        self.userID = userID
        self.topicID = topicID
        self.courseID = courseID
        self.status = status
        self.startedAt = startedAt
    }
}

/// Everything a finished turn writes, in one transaction.
public struct CompletedTurn: Sendable {
    public var sessionID: UUID
    public var turnID: UUID
    /// The user's message; nil for a session's opening turn.
    public var userContent: String?
    /// What the user sees.
    public var replyContent: String
    /// What the model said.
    public var rawReply: String
    public var model: String
    public var usage: TokenUsage
    public var latencyMilliseconds: Int
    public var provider: String?
    public var timeToFirstTokenMilliseconds: Int?
    public var finishReason: String?
    public var attempts: Int?
    /// The user cancelled the turn: the reply is what had been generated.
    public var cancelled: Bool
    /// The reply carried the completion marker: the session becomes `completed`.
    public var completesSession = false
    /// The attempt that holds the turn in the `TurnLedger`: the reply is stored only
    /// while it still does (nil: not fenced).
    public var attempt: UUID?

    public init(
        sessionID: UUID,
        turnID: UUID,
        userContent: String?,
        replyContent: String,
        rawReply: String,
        model: String,
        usage: TokenUsage,
        latencyMilliseconds: Int,
        provider: String? = nil,
        timeToFirstTokenMilliseconds: Int? = nil,
        finishReason: String? = nil,
        attempts: Int? = nil,
        cancelled: Bool = false
    ) {
        self.provider = provider
        self.timeToFirstTokenMilliseconds = timeToFirstTokenMilliseconds
        self.finishReason = finishReason
        self.attempts = attempts
        self.cancelled = cancelled
        self.sessionID = sessionID
        self.turnID = turnID
        self.userContent = userContent
        self.replyContent = replyContent
        self.rawReply = rawReply
        self.model = model
        self.usage = usage
        self.latencyMilliseconds = latencyMilliseconds
    }
}

/// The reply stored for a turn, and whether this call stored it.
public struct StoredReply: Sendable, Equatable {
    public var message: ChatMessage
    /// False when another attempt of the same turn had stored it already.
    public var isNew: Bool

    public init(message: ChatMessage, isNew: Bool) {
        self.message = message
        self.isNew = isNew
    }
}

/// One answered prompt, as the chat-log endpoints list it.
public struct ChatLogEntry: Sendable, Equatable {
    /// The assistant message's id: the order of the log, and its cursor.
    public var messageID: Int64
    public var turnID: UUID
    public var sessionID: UUID
    public var userID: String
    public var prompt: String
    public var response: String
    public var model: String?
    public var timestamp: Date

    public init(
        messageID: Int64,
        turnID: UUID,
        sessionID: UUID,
        userID: String,
        prompt: String,
        response: String,
        model: String?,
        timestamp: Date
    ) {
        self.messageID = messageID
        self.turnID = turnID
        self.sessionID = sessionID
        self.userID = userID
        self.prompt = prompt
        self.response = response
        self.model = model
        self.timestamp = timestamp
    }
}

/// What a worker reads before it claims a turn: the session, and the reply if the
/// turn was answered before (a redelivery).
public struct TurnStart: Sendable, Equatable {
    public var session: SessionRecord?
    public var storedReply: ChatMessage?

    public init(session: SessionRecord?, storedReply: ChatMessage?) {
        self.session = session
        self.storedReply = storedReply
    }
}

/// What a prompt is built from: the session's context and its newest messages.
public struct PromptMaterial: Sendable, Equatable {
    public var context: SessionContext?
    /// Oldest first.
    public var history: [ChatMessage]

    public init(context: SessionContext?, history: [ChatMessage]) {
        self.context = context
        self.history = history
    }
}

/// Sessions and their messages. `PostgresConversationStore` is the real one.
public protocol ConversationStore: Sendable {
    /// Creates a session together with the context it starts with.
    func createSession(_ session: SessionRecord, context: SessionContext) async throws(StoreError)
    func session(id: UUID) async throws(StoreError) -> SessionRecord?
    /// The context the session was started with (nil for sessions older than contexts).
    func context(ofSession id: UUID) async throws(StoreError) -> SessionContext?
    /// The assistant message already stored for `turnID`, if any.
    func reply(forTurn turnID: UUID) async throws(StoreError) -> ChatMessage?
    /// The newest `limit` messages of a session, oldest first.
    func recentMessages(session: UUID, limit: Int) async throws(StoreError) -> [ChatMessage]
    /// Messages with id greater than `afterID`, oldest first.
    func messages(session: UUID, afterID: Int64, limit: Int) async throws(StoreError) -> [ChatMessage]
    /// Stores the user message and the reply of one turn, exactly once per turn id,
    /// and marks the turn answered in the ledger. Throws `superseded` when
    /// `turn.attempt` no longer holds the turn and no reply is stored yet.
    func record(_ turn: CompletedTurn) async throws(StoreError) -> StoredReply
    /// Answered prompts (turns with a user message), newest first, older than the
    /// message id `before`; every user's when `userID` is nil.
    func chatLogs(userID: String?, before: Int64?, limit: Int) async throws(StoreError) -> [ChatLogEntry]
    /// Whether the database answers.
    func ping() async throws(StoreError)
    /// `session(id:)` and `reply(forTurn:)` at once (one round trip on PostgreSQL).
    func turnStart(session: UUID, turn: UUID) async throws(StoreError) -> TurnStart
    /// `context(ofSession:)` and `recentMessages(session:limit:)` at once.
    func promptMaterial(session: UUID, historyLimit: Int) async throws(StoreError) -> PromptMaterial
}

extension ConversationStore {
    public func turnStart(session: UUID, turn: UUID) async throws(StoreError) -> TurnStart {
        TurnStart(session: try await self.session(id: session), storedReply: try await reply(forTurn: turn))
    }

    public func promptMaterial(session: UUID, historyLimit: Int) async throws(StoreError) -> PromptMaterial {
        PromptMaterial(context: try await context(ofSession: session), history: try await recentMessages(session: session, limit: historyLimit))
    }

    /// A free chat session (no topic, no context).
    public func createSession(_ session: SessionRecord) async throws(StoreError) {
        try await createSession(session, context: SessionContext())
    }
}
