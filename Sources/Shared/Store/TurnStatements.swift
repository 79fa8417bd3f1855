import Foundation
import PostgresNIO

// The conversation store's statements on a turn's path, prepared once per connection
// (`StatementRunner`). Types are declared, so that a first run with a NULL does not
// leave a parameter's type to the server's guess; where PostgreSQL cannot infer one
// (a select list, `$n IS NULL`) the SQL casts too, for the unprepared path, whose
// NULLs travel untyped.

/// The session row and the turn's stored reply, either absent: one round trip.
struct TurnStartStatement: PostgresPreparedStatement {
    static let sql = """
        SELECT \(columns)
        FROM (SELECT 1) AS one
        \(joins(session: "$1", turn: "$2"))
        """
    /// The columns of `Row`, from `joins`.
    static let columns = "s.user_id, s.topic_id, s.course_id, s.status, s.started_at, s.completed_at, r.id, r.content, r.created_at"

    static func joins(session: String, turn: String) -> String {
        """
        LEFT JOIN sessions s ON s.id = \(session)
        LEFT JOIN messages r ON r.turn_id = \(turn) AND r.role = 'assistant'
        """
    }
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .uuid]
    typealias Row = (String?, Int64?, Int64?, String?, Date?, Date?, Int64?, String?, Date?)

    var session: UUID
    var turn: UUID

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(session)
        bindings.append(turn)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// The session's context row (if any) and its newest messages as arrays.
struct PromptMaterialStatement: PostgresPreparedStatement {
    static let sql = """
        SELECT \(columns)
        FROM (SELECT 1) AS one
        \(joins(session: "$1", limit: "$2"))
        """
    /// The columns of `Row`, from `joins`.
    static let columns = """
        x.source, x.user_level, x.completed_topics, x.struggles, x.course_title, x.topic_title, x.topic_description,
        x.learning_objectives, x.prompt_template, h.ids, h.roles, h.contents, h.created
        """

    /// `condition`: read only when it holds (evaluated once, before the reads).
    static func joins(session: String, limit: String, when condition: String = "true") -> String {
        """
        LEFT JOIN session_contexts x ON x.session_id = \(session) AND \(condition)
        LEFT JOIN LATERAL (
            SELECT array_agg(id ORDER BY id) AS ids, array_agg(role ORDER BY id) AS roles,
                   array_agg(content ORDER BY id) AS contents, array_agg(created_at ORDER BY id) AS created
            FROM (
                SELECT id, role, content, created_at FROM messages WHERE session_id = \(session) AND \(condition) ORDER BY id DESC LIMIT \(limit)
            ) AS newest
        ) AS h ON true
        """
    }
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .int8]
    typealias Row = (
        String?, String?, [String]?, [String]?, String?, String?, String?, [String]?, String?, [Int64]?, [String]?, [String]?, [Date]?
    )

    var session: UUID
    var historyLimit: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(session)
        bindings.append(historyLimit)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// `record` in one statement: data-modifying CTEs, which PostgreSQL runs in one
/// snapshot and as one atomic step. Each part depends on the one before it by reading
/// it (`FROM allowed`, `FROM asked`, `FROM answer`), so the user message gets its id
/// before the reply does, and nothing is written unless the fence passed: the
/// attempt ($2) still holds the turn in the ledger, or no attempt is named. (The
/// reply reads the user message's count in its WHERE: a join whose columns go unused
/// could be removed by the planner, and with it the ordering.) Completing a session
/// queues the learning platform's notice in the same step, only for a session whose
/// topic came from the platform: it completes once, so it is noticed once. What the
/// platform is told is built when it is sent (`TopicCompletion`).
struct RecordStatement: PostgresPreparedStatement {
    static let sql = """
        WITH fence AS (
            UPDATE turns SET state = 'answered', holder = NULL, held_until = NULL, settled_at = now()
            WHERE turn_id = $1 AND session_id = $3 AND holder = $2 AND state = 'queued'
            RETURNING 1
        ), allowed AS (
            SELECT 1 AS ok WHERE $2::uuid IS NULL OR EXISTS (SELECT 1 FROM fence)
        ), asked AS (
            INSERT INTO messages (session_id, turn_id, role, content, raw_content)
            SELECT $3::uuid, $1::uuid, 'user', $4::text, $4::text FROM allowed WHERE $4::text IS NOT NULL
            ON CONFLICT (turn_id, role) DO NOTHING
            RETURNING id
        ), answer AS (
            INSERT INTO messages (session_id, turn_id, role, content, raw_content, model, prompt_tokens, completion_tokens, latency_ms,
                                  provider, ttft_ms, finish_reason, attempts, cancelled)
            SELECT $3::uuid, $1::uuid, 'assistant', $5::text, $6::text, $7::text, $8::int8, $9::int8, $10::int8, $11::text, $12::int8, $13::text,
                   $14::int8, $15::bool
            FROM allowed CROSS JOIN (SELECT count(*) AS asked FROM asked) AS user_message
            WHERE user_message.asked >= 0
            ON CONFLICT (turn_id, role) DO NOTHING
            RETURNING id, created_at
        ), completed AS (
            UPDATE sessions SET status = 'completed', completed_at = now(), last_activity_at = now()
            WHERE id = $3 AND status = 'active' AND $16 AND EXISTS (SELECT 1 FROM answer)
            RETURNING id, topic_id
        ), touched AS (
            UPDATE sessions SET last_activity_at = now()
            WHERE id = $3 AND NOT $16 AND EXISTS (SELECT 1 FROM answer)
        ), noticed AS (
            INSERT INTO completion_outbox (session_id)
            SELECT c.id FROM completed c JOIN session_contexts x ON x.session_id = c.id
            WHERE x.source = 'platform' AND c.topic_id IS NOT NULL
            ON CONFLICT (session_id) DO NOTHING
        )
        SELECT EXISTS (SELECT 1 FROM allowed), a.id, a.created_at FROM (SELECT 1) AS one LEFT JOIN answer a ON true
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .uuid, .uuid, .uuid, .text, .text, .text, .text, .int8, .int8, .int8, .text, .int8, .text, .int8, .bool, .bool,
    ]
    typealias Row = (Bool, Int64?, Date?)

    /// Its texts already made storable (`CompletedTurn.storable`).
    var turn: CompletedTurn

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 16)
        bindings.append(turn.turnID)
        bindings.append(turn.attempt)
        bindings.append(turn.sessionID)
        bindings.append(turn.userContent)
        bindings.append(turn.replyContent)
        bindings.append(turn.rawReply)
        bindings.append(turn.model)
        bindings.append(turn.usage.promptTokens)
        bindings.append(turn.usage.completionTokens)
        bindings.append(turn.latencyMilliseconds)
        bindings.append(turn.provider)
        bindings.append(turn.timeToFirstTokenMilliseconds)
        bindings.append(turn.finishReason)
        bindings.append(turn.attempts)
        bindings.append(turn.cancelled)
        bindings.append(turn.completesSession)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
