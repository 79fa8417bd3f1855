import Foundation
import Logging
import PostgresNIO

/// `SessionDirectory` on PostgreSQL: one statement over `sessions_user_started_idx`.
public struct PostgresSessionDirectory: SessionDirectory {
    private let client: PostgresClient
    private let logger: Logger
    private let timeout: Duration

    public init(client: PostgresClient, logger: Logger, timeout: Duration = .seconds(5)) {
        self.client = client
        self.logger = logger
        self.timeout = timeout
    }

    public func sessions(ofUser userID: String, before: SessionCursor?, limit: Int) async throws(StoreError) -> [SessionSummary] {
        let (client, logger) = (self.client, self.logger)
        let below = before ?? .top
        return try await storeCall(timeout: timeout) {
            // The cursor is compared in whole microseconds, the column's resolution
            // (an integer interval, no floating point on either side).
            let rows = try await client.query(
                """
                SELECT s.id, s.status, s.topic_id, s.course_id, c.topic_title,
                       (SELECT m.content FROM messages m WHERE m.session_id = s.id AND m.role = 'user' ORDER BY m.id LIMIT 1),
                       (extract(epoch FROM s.started_at) * 1000000)::bigint, s.last_activity_at
                FROM sessions s LEFT JOIN session_contexts c ON c.session_id = s.id
                WHERE s.user_id = \(userID)
                  AND (s.started_at, s.id) < (timestamptz 'epoch' + \(below.startedAtMicroseconds) * interval '1 microsecond', \(below.id))
                ORDER BY s.started_at DESC, s.id DESC
                LIMIT \(limit)
                """,
                logger: logger
            )
            var sessions: [SessionSummary] = []
            for try await (id, status, topicID, courseID, topicTitle, firstMessage, startedAt, lastActivityAt) in rows.decode(
                (UUID, String, Int64?, Int64?, String?, String?, Int64, Date).self
            ) {
                sessions.append(
                    SessionSummary(
                        id: id,
                        status: SessionRecord.Status(rawValue: status) ?? .abandoned,
                        topicID: topicID,
                        courseID: courseID,
                        topicTitle: topicTitle,
                        firstMessage: firstMessage,
                        startedAtMicroseconds: startedAt,
                        lastActivityAt: lastActivityAt
                    )
                )
            }
            return sessions
        }
    }

    public func userMessageCount(session: UUID) async throws(StoreError) -> Int {
        let (client, logger) = (self.client, self.logger)
        return try await storeCall(timeout: timeout) {
            let rows = try await client.query("SELECT count(*) FROM messages WHERE session_id = \(session) AND role = 'user'", logger: logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }
}
