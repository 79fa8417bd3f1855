import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The local topic catalog (the `topics` table, filled from `TOPICS_FILE`), used for
/// session context when no learning platform is configured.
public protocol TopicCatalog: Sendable {
    func topic(id: Int64) async throws(StoreError) -> CatalogTopic?
    /// The title of a course some topic belongs to; nil when no topic names it.
    func courseTitle(id: Int64) async throws(StoreError) -> String?
    /// Titles of the topics the user completed in Parley, oldest first.
    func completedTopicTitles(userID: String) async throws(StoreError) -> [String]
    /// The first `limit` topics by course and id, for a page to offer.
    func topics(limit: Int) async throws(StoreError) -> [CatalogTopic]
}

/// `TopicCatalog` on PostgreSQL.
public struct PostgresTopicCatalog: TopicCatalog {
    private let client: PostgresClient
    private let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func topic(id: Int64) async throws(StoreError) -> CatalogTopic? {
        let (client, logger) = (self.client, self.logger)
        return try await run {
            try await Self.topics(in: client.query("SELECT \(unescaped: Self.topicColumns) FROM topics WHERE id = \(id)", logger: logger)).first
        }
    }

    public func courseTitle(id: Int64) async throws(StoreError) -> String? {
        let (client, logger) = (self.client, self.logger)
        return try await run {
            let rows = try await client.query(
                "SELECT course_title FROM topics WHERE course_id = \(id) AND course_title IS NOT NULL LIMIT 1",
                logger: logger
            )
            for try await title in rows.decode(String.self) { return title }
            return nil
        }
    }

    public func topics(limit: Int) async throws(StoreError) -> [CatalogTopic] {
        let (client, logger) = (self.client, self.logger)
        return try await run {
            try await Self.topics(
                in: client.query(
                    "SELECT \(unescaped: Self.topicColumns) FROM topics ORDER BY course_id NULLS LAST, id LIMIT \(limit)",
                    logger: logger
                )
            )
        }
    }

    private static let topicColumns = "id, title, description, learning_objectives, prompt_template, course_id, course_title"

    /// The topics of rows of `topicColumns`.
    private static func topics(in rows: PostgresRowSequence) async throws -> [CatalogTopic] {
        var topics: [CatalogTopic] = []
        for try await (id, title, description, objectives, template, courseID, courseTitle) in rows.decode(
            (Int64, String, String?, [String], String?, Int64?, String?).self
        ) {
            topics.append(
                CatalogTopic(
                    id: id,
                    title: title,
                    description: description,
                    learningObjectives: objectives,
                    promptTemplate: template,
                    courseID: courseID,
                    courseTitle: courseTitle
                )
            )
        }
        return topics
    }

    public func completedTopicTitles(userID: String) async throws(StoreError) -> [String] {
        let (client, logger) = (self.client, self.logger)
        return try await run {
            let rows = try await client.query(
                """
                SELECT t.title FROM sessions s JOIN topics t ON t.id = s.topic_id
                WHERE s.user_id = \(userID) AND s.status = 'completed'
                GROUP BY t.id, t.title ORDER BY min(s.completed_at) LIMIT 50
                """,
                logger: logger
            )
            var titles: [String] = []
            for try await title in rows.decode(String.self) { titles.append(title) }
            return titles
        }
    }

    /// Makes the table hold exactly `topics` (inserts, updates, deletes), in one
    /// transaction; several workers doing it at once end with the same result.
    public func replace(with topics: [CatalogTopic]) async throws(StoreError) {
        let (client, logger) = (self.client, self.logger)
        try await run {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("LOCK TABLE topics IN SHARE ROW EXCLUSIVE MODE", logger: logger)
                let ids = topics.map(\.id)
                try await connection.query("DELETE FROM topics WHERE NOT (id = ANY(\(ids)))", logger: logger)
                for topic in topics {
                    try await connection.query(
                        """
                        INSERT INTO topics (id, title, description, learning_objectives, prompt_template, course_id, course_title, updated_at)
                        VALUES (\(topic.id), \(topic.title), \(topic.description), \(topic.learningObjectives), \(topic.promptTemplate),
                                \(topic.courseID), \(topic.courseTitle), now())
                        ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, description = EXCLUDED.description,
                            learning_objectives = EXCLUDED.learning_objectives, prompt_template = EXCLUDED.prompt_template,
                            course_id = EXCLUDED.course_id, course_title = EXCLUDED.course_title, updated_at = now()
                        """,
                        logger: logger
                    )
                }
            }
        }
    }

    @discardableResult
    private func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws(StoreError) -> T {
        try await storeCall(timeout: .seconds(10), body)
    }
}
