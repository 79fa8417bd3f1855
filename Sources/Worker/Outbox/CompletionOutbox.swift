import Foundation
import Logging
import ParleySupport
import PostgresNIO
import Shared

/// A completion waiting to be sent to the learning platform, claimed by one sender.
public struct OutboxEntry: Sendable, Equatable {
    public var id: Int64
    public var sessionID: UUID
    /// What the platform is told, from the session's row (or, for a row queued before
    /// migration 6 whose session is gone, from the payload it was queued with); nil
    /// when neither exists, and the row cannot be sent.
    public var completion: TopicCompletion?
    /// Attempts so far, this one included.
    public var attempts: Int
    /// The claim: only its holder records a failure.
    public var claim: UUID
}

/// The `completion_outbox` table: rows are written in the transaction that completes a
/// session (see `PostgresConversationStore.record`) and sent by `CompletionSender`. A
/// row names its session; the notice is built from the session's row when claimed.
///
/// A row is *claimed* before it is sent: its `next_attempt_at` moves a lease into the
/// future and it gets a claim token, so no other sender takes it while this one sends.
/// Claims use `FOR UPDATE SKIP LOCKED` and are committed at once; no transaction stays
/// open during the HTTP call.
public protocol CompletionOutbox: Sendable {
    /// Claims the oldest due row, if any, for `lease`.
    func claim(lease: Duration) async throws(StoreError) -> OutboxEntry?
    func markDelivered(_ entry: OutboxEntry) async throws(StoreError)
    /// Records the failure; the row is due again after `retryIn` — unless another
    /// sender has claimed it since (the lease ran out), which then owns it.
    func markFailed(_ entry: OutboxEntry, error: String, retryIn: Duration) async throws(StoreError)
    /// Rows not delivered yet.
    func backlog() async throws(StoreError) -> Int
}

/// `CompletionOutbox` on PostgreSQL.
public struct PostgresCompletionOutbox: CompletionOutbox {
    private let client: PostgresClient
    private let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func claim(lease: Duration) async throws(StoreError) -> OutboxEntry? {
        let (client, logger) = (self.client, self.logger)
        let seconds = Double(lease.wholeMilliseconds) / 1000
        return try await storeCall(timeout: .seconds(10)) {
            let rows = try await client.query(
                """
                WITH claimed AS (
                    UPDATE completion_outbox
                    SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => \(seconds)), claim_token = gen_random_uuid()
                    WHERE id = (
                        SELECT id FROM completion_outbox
                        WHERE delivered_at IS NULL AND next_attempt_at <= now()
                        ORDER BY next_attempt_at, id LIMIT 1
                        FOR UPDATE SKIP LOCKED
                    )
                    RETURNING id, session_id, attempts, claim_token, created_at, payload
                )
                SELECT c.id, c.session_id, c.attempts, c.claim_token, s.user_id, s.topic_id, s.course_id,
                       coalesce(s.completed_at, c.created_at), c.payload::text
                FROM claimed c LEFT JOIN sessions s ON s.id = c.session_id
                """,
                logger: logger
            )
            let columns = (Int64, UUID, Int32, UUID, String?, Int64?, Int64?, Date, String?).self
            for try await (id, sessionID, attempts, claim, userID, topicID, courseID, completedAt, payload) in rows.decode(columns) {
                var completion: TopicCompletion?
                if let userID, let topicID {
                    completion = TopicCompletion(sessionID: sessionID, userID: userID, topicID: topicID, courseID: courseID, completedAt: completedAt)
                } else if let payload {
                    completion = TopicCompletion(payload: Data(payload.utf8))
                }
                return OutboxEntry(id: id, sessionID: sessionID, completion: completion, attempts: Int(attempts), claim: claim)
            }
            return nil
        }
    }

    public func markDelivered(_ entry: OutboxEntry) async throws(StoreError) {
        let (client, logger) = (self.client, self.logger)
        try await storeCall(timeout: .seconds(10)) {
            try await client.query(
                "UPDATE completion_outbox SET delivered_at = now(), last_error = NULL WHERE id = \(entry.id) AND delivered_at IS NULL",
                logger: logger
            )
        }
    }

    public func markFailed(_ entry: OutboxEntry, error: String, retryIn: Duration) async throws(StoreError) {
        let (client, logger) = (self.client, self.logger)
        let seconds = Double(retryIn.wholeMilliseconds) / 1000
        try await storeCall(timeout: .seconds(10)) {
            try await client.query(
                """
                UPDATE completion_outbox SET last_error = \(String(error.prefix(1000))), next_attempt_at = now() + make_interval(secs => \(seconds))
                WHERE id = \(entry.id) AND claim_token = \(entry.claim) AND delivered_at IS NULL
                """,
                logger: logger
            )
        }
    }

    public func backlog() async throws(StoreError) -> Int {
        let (client, logger) = (self.client, self.logger)
        return try await storeCall(timeout: .seconds(5)) {
            let rows = try await client.query("SELECT count(*) FROM completion_outbox WHERE delivered_at IS NULL", logger: logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }
}
