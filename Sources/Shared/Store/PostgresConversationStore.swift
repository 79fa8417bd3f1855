import Foundation
import Logging
import PostgresNIO

/// `ConversationStore` on PostgreSQL. SQL with bound parameters only.
public struct PostgresConversationStore: ConversationStore {
    private let client: PostgresClient
    private let logger: Logger
    private let timeout: Duration
    private let statements: StatementRunner

    /// `preparedStatements`: see `StatementRunner` (`DATABASE_PREPARED_STATEMENTS`).
    public init(client: PostgresClient, logger: Logger, timeout: Duration = .seconds(10), preparedStatements: Bool = true) {
        self.client = client
        self.logger = logger
        self.timeout = timeout
        self.statements = StatementRunner(client: client, prepared: preparedStatements, logger: logger)
    }

    public func createSession(_ session: SessionRecord, context: SessionContext) async throws(StoreError) {
        let (client, logger, context) = (self.client, self.logger, context.storable)
        try await run {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query(
                    """
                    INSERT INTO sessions (id, user_id, topic_id, course_id, status, started_at, last_activity_at)
                    VALUES (\(session.id), \(session.userID), \(session.topicID), \(session.courseID), \(session.status.rawValue), \(session.startedAt), \(session.startedAt))
                    """,
                    logger: logger
                )
                try await connection.query(
                    """
                    INSERT INTO session_contexts (session_id, source, user_level, completed_topics, struggles, course_title, topic_title,
                                                  topic_description, learning_objectives, prompt_template)
                    VALUES (\(session.id), \(context.source.rawValue), \(context.userLevel), \(context.completedTopics), \(context.struggles),
                            \(context.courseTitle), \(context.topicTitle), \(context.topicDescription), \(context.learningObjectives), \(context.promptTemplate))
                    """,
                    logger: logger
                )
            }
        }
    }

    public func session(id: UUID) async throws(StoreError) -> SessionRecord? {
        let (client, logger) = (self.client, self.logger)
        return try await run {
            let rows = try await client.query(
                "SELECT user_id, topic_id, course_id, status, started_at, completed_at FROM sessions WHERE id = \(id)",
                logger: logger
            )
            for try await columns in rows.decode(SessionColumns.self) {
                return Self.sessionRecord(id, columns)
            }
            return nil
        }
    }

    public func context(ofSession id: UUID) async throws(StoreError) -> SessionContext? {
        let (client, logger) = (self.client, self.logger)
        return try await run {
            let rows = try await client.query(
                "SELECT \(unescaped: Self.contextColumns) FROM session_contexts x WHERE x.session_id = \(id)",
                logger: logger
            )
            for try await row in rows {
                return try Self.context(from: row.decode(ContextColumns.self))
            }
            return nil
        }
    }

    /// One round trip: the session row and the turn's stored reply, either absent.
    public func turnStart(session: UUID, turn: UUID) async throws(StoreError) -> TurnStart {
        let statements = self.statements
        return try await run {
            guard let row = try await statements.rows(TurnStartStatement(session: session, turn: turn)).first else {
                return TurnStart(session: nil, storedReply: nil)
            }
            return Self.turnStart(session, from: row)
        }
    }

    /// A row of `TurnStartStatement` (or its columns in `TurnOpeningStatement`).
    static func turnStart(_ session: UUID, from row: TurnStartStatement.Row) -> TurnStart {
        let (userID, topicID, courseID, status, startedAt, completedAt, replyID, content, createdAt) = row
        var record: SessionRecord?
        if let userID, let status, let startedAt {
            record = Self.sessionRecord(session, (userID, topicID, courseID, status, startedAt, completedAt))
        }
        var reply: ChatMessage?
        if let replyID, let content, let createdAt {
            reply = ChatMessage(id: replyID, role: .assistant, content: content, timestamp: createdAt)
        }
        return TurnStart(session: record, storedReply: reply)
    }

    /// One round trip: the context row (if any) and the newest messages.
    public func promptMaterial(session: UUID, historyLimit: Int) async throws(StoreError) -> PromptMaterial {
        let statements = self.statements
        return try await run {
            guard let columns = try await statements.rows(PromptMaterialStatement(session: session, historyLimit: historyLimit)).first else {
                return PromptMaterial(context: nil, history: [])
            }
            return try Self.promptMaterial(session, from: columns)
        }
    }

    /// A row of `PromptMaterialStatement` (or its columns in `TurnOpeningStatement`).
    static func promptMaterial(_ session: UUID, from columns: PromptMaterialStatement.Row) throws(StoreError) -> PromptMaterial {
        let context = columns.0.map {
            Self.context(from: ($0, columns.1, columns.2 ?? [], columns.3 ?? [], columns.4, columns.5, columns.6, columns.7 ?? [], columns.8))
        }
        let (ids, roles, contents, created) = (columns.9 ?? [], columns.10 ?? [], columns.11 ?? [], columns.12 ?? [])
        guard ids.count == roles.count, ids.count == contents.count, ids.count == created.count else {
            throw StoreError.queryFailed("the history of session \(session) came back with arrays of different lengths")
        }
        let history = ids.indices.map {
            ChatMessage(id: ids[$0], role: ChatMessage.Role(rawValue: roles[$0]) ?? .user, content: contents[$0], timestamp: created[$0])
        }
        return PromptMaterial(context: context, history: history)
    }

    private typealias SessionColumns = (String, Int64?, Int64?, String, Date, Date?)

    private static func sessionRecord(_ id: UUID, _ columns: SessionColumns) -> SessionRecord {
        let (userID, topicID, courseID, status, startedAt, completedAt) = columns
        return SessionRecord(
            id: id,
            userID: userID,
            topicID: topicID,
            courseID: courseID,
            status: SessionRecord.Status(rawValue: status) ?? .active,
            startedAt: startedAt,
            completedAt: completedAt
        )
    }

    private static let contextColumns =
        "x.source, x.user_level, x.completed_topics, x.struggles, x.course_title, x.topic_title, x.topic_description, x.learning_objectives, x.prompt_template"

    private typealias ContextColumns = (String, String?, [String], [String], String?, String?, String?, [String], String?)

    private static func context(from columns: ContextColumns) -> SessionContext {
        let (source, level, completed, struggles, course, topic, description, objectives, template) = columns
        return SessionContext(
            source: SessionContext.Source(rawValue: source) ?? .none,
            topicTitle: topic,
            topicDescription: description,
            courseTitle: course,
            learningObjectives: objectives,
            userLevel: level,
            completedTopics: completed,
            struggles: struggles,
            promptTemplate: template
        )
    }

    public func reply(forTurn turnID: UUID) async throws(StoreError) -> ChatMessage? {
        let (client, logger) = (self.client, self.logger)
        return try await run {
            try await client.withConnection { connection in try await Self.storedReply(of: turnID, on: connection, logger: logger) }
        }
    }

    public func recentMessages(session: UUID, limit: Int) async throws(StoreError) -> [ChatMessage] {
        let (client, logger) = (self.client, self.logger)
        return try await run {
            let rows = try await client.query(
                """
                SELECT id, role, content, created_at FROM (
                    SELECT id, role, content, created_at FROM messages
                    WHERE session_id = \(session) ORDER BY id DESC LIMIT \(limit)
                ) AS newest ORDER BY id ASC
                """,
                logger: logger
            )
            return try await Self.messages(from: rows)
        }
    }

    public func messages(session: UUID, afterID: Int64, limit: Int) async throws(StoreError) -> [ChatMessage] {
        let (client, logger) = (self.client, self.logger)
        return try await run {
            let rows = try await client.query(
                """
                SELECT id, role, content, created_at FROM messages
                WHERE session_id = \(session) AND id > \(afterID) ORDER BY id ASC LIMIT \(limit)
                """,
                logger: logger
            )
            return try await Self.messages(from: rows)
        }
    }

    /// One statement (`RecordStatement`: one round trip, and atomic by itself): the
    /// fence on the ledger, the user message, the reply, and the session's update —
    /// its last activity, or its completion together with the learning platform's
    /// notice.
    public func record(_ turn: CompletedTurn) async throws(StoreError) -> StoredReply {
        let (client, logger, statements, turn) = (self.client, self.logger, self.statements, turn.storable)
        return try await run {
            let outcome = try await statements.rows(RecordStatement(turn: turn)).first ?? (false, nil, nil)
            if outcome.0, let id = outcome.1, let createdAt = outcome.2 {
                return StoredReply(message: ChatMessage(id: id, role: .assistant, content: turn.replyContent, timestamp: createdAt), isNew: true)
            }
            // Another attempt holds the turn or answered it, or (unfenced) its reply
            // is stored already: answer with the stored reply, if there is one.
            if let existing = try await client.withConnection({ try await Self.storedReply(of: turn.turnID, on: $0, logger: logger) }) {
                return StoredReply(message: existing, isNew: false)
            }
            if outcome.0 { throw StoreError.queryFailed("the reply of turn \(turn.turnID) conflicted but cannot be read") }
            throw StoreError.superseded(turnID: turn.turnID)
        }
    }

    private static func storedReply(of turnID: UUID, on connection: PostgresConnection, logger: Logger) async throws -> ChatMessage? {
        let rows = try await connection.query(
            "SELECT id, content, created_at FROM messages WHERE turn_id = \(turnID) AND role = 'assistant'",
            logger: logger
        )
        for try await (id, content, createdAt) in rows.decode((Int64, String, Date).self) {
            return ChatMessage(id: id, role: .assistant, content: content, timestamp: createdAt)
        }
        return nil
    }

    public func chatLogs(userID: String?, before: Int64?, limit: Int) async throws(StoreError) -> [ChatLogEntry] {
        let (client, logger) = (self.client, self.logger)
        return try await run {
            let before = before ?? Int64.max
            // Two statements, so that each has the plan that suits it: one user's
            // sessions first, or every answer newest first.
            let rows: PostgresRowSequence
            if let userID {
                rows = try await client.query(
                    """
                    SELECT a.id, a.turn_id, a.session_id, s.user_id, u.content, a.content, a.model, a.created_at
                    FROM sessions s
                    JOIN messages a ON a.session_id = s.id AND a.role = 'assistant'
                    JOIN messages u ON u.turn_id = a.turn_id AND u.role = 'user'
                    WHERE s.user_id = \(userID) AND a.id < \(before)
                    ORDER BY a.id DESC LIMIT \(limit)
                    """,
                    logger: logger
                )
            } else {
                rows = try await client.query(
                    """
                    SELECT a.id, a.turn_id, a.session_id, s.user_id, u.content, a.content, a.model, a.created_at
                    FROM messages a
                    JOIN messages u ON u.turn_id = a.turn_id AND u.role = 'user'
                    JOIN sessions s ON s.id = a.session_id
                    WHERE a.role = 'assistant' AND a.id < \(before)
                    ORDER BY a.id DESC LIMIT \(limit)
                    """,
                    logger: logger
                )
            }
            var entries: [ChatLogEntry] = []
            for try await (id, turnID, sessionID, user, prompt, response, model, createdAt) in rows.decode(
                (Int64, UUID, UUID, String, String, String, String?, Date).self
            ) {
                entries.append(
                    ChatLogEntry(
                        messageID: id,
                        turnID: turnID,
                        sessionID: sessionID,
                        userID: user,
                        prompt: prompt,
                        response: response,
                        model: model,
                        timestamp: createdAt
                    )
                )
            }
            return entries
        }
    }

    /// Health checks must answer fast, so a ping waits at most 2 s.
    public func ping() async throws(StoreError) {
        let (client, logger) = (self.client, self.logger)
        try await storeCall(timeout: .seconds(2)) { try await client.query("SELECT 1", logger: logger) }
    }

    private static func messages(from rows: PostgresRowSequence) async throws -> [ChatMessage] {
        var messages: [ChatMessage] = []
        for try await (id, role, content, createdAt) in rows.decode((Int64, String, String, Date).self) {
            messages.append(ChatMessage(id: id, role: ChatMessage.Role(rawValue: role) ?? .user, content: content, timestamp: createdAt))
        }
        return messages
    }

    @discardableResult
    private func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws(StoreError) -> T {
        try await storeCall(timeout: timeout, body)
    }
}
