import Foundation
import Logging
import PostgresNIO

/// `ConversationStore` on PostgreSQL. SQL with bound parameters only.
public struct PostgresConversationStore: ConversationStore {
    private let client: PostgresClient
    private let logger: Logger
    private let timeout: Duration

    public init(client: PostgresClient, logger: Logger, timeout: Duration = .seconds(10)) {
        self.client = client
        self.logger = logger
        self.timeout = timeout
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
            for try await (userID, topicID, courseID, status, startedAt, completedAt) in rows.decode(
                (String, Int64?, Int64?, String, Date, Date?).self
            ) {
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
            return nil
        }
    }

    public func context(ofSession id: UUID) async throws(StoreError) -> SessionContext? {
        let (client, logger) = (self.client, self.logger)
        return try await run {
            let rows = try await client.query(
                """
                SELECT source, user_level, completed_topics, struggles, course_title, topic_title, topic_description, learning_objectives, prompt_template
                FROM session_contexts WHERE session_id = \(id)
                """,
                logger: logger
            )
            for try await row in rows {
                let (source, level, completed, struggles, course, topic, description, objectives, template) = try row.decode(
                    (String, String?, [String], [String], String?, String?, String?, [String], String?).self
                )
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
            return nil
        }
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

    public func record(_ turn: CompletedTurn) async throws(StoreError) -> StoredReply {
        let (client, logger, turn) = (self.client, self.logger, turn.storable)
        return try await run {
            try await client.withTransaction(logger: logger) { connection -> StoredReply in
                if let attempt = turn.attempt, try await !Self.markAnswered(turn.turnID, by: attempt, on: connection, logger: logger) {
                    // Another attempt holds the turn, or answered it already.
                    if let existing = try await Self.storedReply(of: turn.turnID, on: connection, logger: logger) {
                        return StoredReply(message: existing, isNew: false)
                    }
                    throw StoreError.superseded(turnID: turn.turnID)
                }
                try await Self.insertUserMessage(of: turn, on: connection, logger: logger)
                guard let message = try await Self.insertReply(of: turn, on: connection, logger: logger) else {
                    // Another attempt of this turn committed first: answer with its reply.
                    if let existing = try await Self.storedReply(of: turn.turnID, on: connection, logger: logger) {
                        return StoredReply(message: existing, isNew: false)
                    }
                    throw StoreError.queryFailed("the reply of turn \(turn.turnID) conflicted but cannot be read")
                }
                if turn.completesSession {
                    try await Self.completeSession(of: turn, on: connection, logger: logger)
                } else {
                    try await connection.query("UPDATE sessions SET last_activity_at = now() WHERE id = \(turn.sessionID)", logger: logger)
                }
                return StoredReply(message: message, isNew: true)
            }
        }
    }

    /// The learner's message of the turn (a session's opening has none).
    private static func insertUserMessage(of turn: CompletedTurn, on connection: PostgresConnection, logger: Logger) async throws {
        guard let userContent = turn.userContent else { return }
        try await connection.query(
            """
            INSERT INTO messages (session_id, turn_id, role, content, raw_content)
            VALUES (\(turn.sessionID), \(turn.turnID), 'user', \(userContent), \(userContent))
            ON CONFLICT (turn_id, role) DO NOTHING
            """,
            logger: logger
        )
    }

    /// The reply; nil when the turn has a reply already (another attempt's).
    private static func insertReply(of turn: CompletedTurn, on connection: PostgresConnection, logger: Logger) async throws -> ChatMessage? {
        let inserted = try await connection.query(
            """
            INSERT INTO messages (session_id, turn_id, role, content, raw_content, model, prompt_tokens, completion_tokens, latency_ms,
                                  provider, ttft_ms, finish_reason, attempts, cancelled)
            VALUES (\(turn.sessionID), \(turn.turnID), 'assistant', \(turn.replyContent), \(turn.rawReply), \(turn.model),
                    \(turn.usage.promptTokens), \(turn.usage.completionTokens), \(turn.latencyMilliseconds),
                    \(turn.provider), \(turn.timeToFirstTokenMilliseconds), \(turn.finishReason), \(turn.attempts), \(turn.cancelled))
            ON CONFLICT (turn_id, role) DO NOTHING
            RETURNING id, created_at
            """,
            logger: logger
        )
        for try await (id, createdAt) in inserted.decode((Int64, Date).self) {
            return ChatMessage(id: id, role: .assistant, content: turn.replyContent, timestamp: createdAt)
        }
        return nil
    }

    /// Completes the session and queues the learning platform's notice, in one step:
    /// a session completes once, so it is noticed once. Only sessions whose topic came
    /// from the platform are its business. The row names the session; what the
    /// platform is told is built when it is sent (`TopicCompletion`).
    private static func completeSession(of turn: CompletedTurn, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            WITH completed AS (
                UPDATE sessions SET status = 'completed', completed_at = now(), last_activity_at = now()
                WHERE id = \(turn.sessionID) AND status = 'active'
                RETURNING id, topic_id
            )
            INSERT INTO completion_outbox (session_id)
            SELECT c.id
            FROM completed c JOIN session_contexts x ON x.session_id = c.id
            WHERE x.source = 'platform' AND c.topic_id IS NOT NULL
            ON CONFLICT (session_id) DO NOTHING
            """,
            logger: logger
        )
    }

    /// Marks the turn answered if `attempt` holds it (in the reply's transaction).
    private static func markAnswered(_ turnID: UUID, by attempt: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE turns SET state = 'answered', holder = NULL, held_until = NULL, settled_at = now()
            WHERE turn_id = \(turnID) AND holder = \(attempt) AND state = 'queued'
            RETURNING 1
            """,
            logger: logger
        )
        for try await _ in rows { return true }
        return false
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
