import Logging
import PostgresNIO
import Shared

/// One numbered schema change, applied once.
public struct Migration: Sendable {
    public var version: Int
    public var name: String
    public var statements: [String]
}

/// Parley's schema, in order. Append; never edit an applied migration.
public enum ParleyMigrations {
    public static let all: [Migration] = [
        Migration(
            version: 1,
            name: "sessions and messages",
            statements: [
                """
                CREATE TABLE sessions (
                    id uuid PRIMARY KEY,
                    user_id text NOT NULL,
                    topic_id bigint,
                    course_id bigint,
                    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'abandoned')),
                    started_at timestamptz NOT NULL DEFAULT now(),
                    completed_at timestamptz,
                    last_activity_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "CREATE INDEX sessions_user_started_idx ON sessions (user_id, started_at DESC)",
                """
                CREATE TABLE messages (
                    id bigserial PRIMARY KEY,
                    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                    turn_id uuid NOT NULL,
                    role text NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
                    content text NOT NULL,
                    raw_content text NOT NULL,
                    model text,
                    prompt_tokens integer,
                    completion_tokens integer,
                    latency_ms integer,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    CONSTRAINT messages_turn_role_key UNIQUE (turn_id, role)
                )
                """,
                "CREATE INDEX messages_session_id_idx ON messages (session_id, id)",
            ]
        ),
        Migration(
            version: 2,
            name: "facts of each answer",
            statements: [
                """
                ALTER TABLE messages
                    ADD COLUMN provider text,
                    ADD COLUMN ttft_ms integer,
                    ADD COLUMN finish_reason text,
                    ADD COLUMN attempts integer,
                    ADD COLUMN cancelled boolean NOT NULL DEFAULT false
                """
            ]
        ),
        Migration(
            version: 3,
            name: "topics, session contexts, completion outbox",
            statements: [
                """
                CREATE TABLE topics (
                    id bigint PRIMARY KEY,
                    title text NOT NULL,
                    description text,
                    learning_objectives text[] NOT NULL DEFAULT '{}',
                    prompt_template text,
                    course_id bigint,
                    course_title text,
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "CREATE INDEX topics_course_idx ON topics (course_id)",
                """
                CREATE TABLE session_contexts (
                    session_id uuid PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
                    source text NOT NULL CHECK (source IN ('platform', 'catalog', 'none')),
                    user_level text,
                    completed_topics text[] NOT NULL DEFAULT '{}',
                    struggles text[] NOT NULL DEFAULT '{}',
                    course_title text,
                    topic_title text,
                    topic_description text,
                    learning_objectives text[] NOT NULL DEFAULT '{}',
                    prompt_template text,
                    created_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                """
                CREATE TABLE completion_outbox (
                    id bigserial PRIMARY KEY,
                    session_id uuid NOT NULL UNIQUE,
                    payload jsonb NOT NULL,
                    attempts integer NOT NULL DEFAULT 0,
                    next_attempt_at timestamptz NOT NULL DEFAULT now(),
                    delivered_at timestamptz,
                    last_error text,
                    created_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "CREATE INDEX completion_outbox_pending_idx ON completion_outbox (next_attempt_at) WHERE delivered_at IS NULL",
                "CREATE INDEX messages_role_id_idx ON messages (role, id)",
            ]
        ),
        Migration(
            version: 4,
            name: "outbox claims",
            statements: [
                // Who holds a row's lease: only the holder may record a failure.
                "ALTER TABLE completion_outbox ADD COLUMN claim_token uuid"
            ]
        ),
        Migration(
            version: 5,
            name: "turn ledger",
            statements: [
                // Every turn in its session's order, and the attempt generating it
                // (TurnLedger, docs/decisions.md "Turn order across gateways").
                """
                CREATE TABLE turns (
                    turn_id uuid PRIMARY KEY,
                    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                    seq bigint NOT NULL,
                    state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'answered', 'failed', 'withdrawn')),
                    deadline timestamptz NOT NULL,
                    -- when its gateway sent it, and whether a worker had to enter it
                    -- (its gateway could not): such a turn is ordered by sent_at
                    sent_at timestamptz NOT NULL,
                    late boolean NOT NULL DEFAULT false,
                    holder uuid,
                    holder_copy uuid,
                    held_until timestamptz,
                    attempts integer NOT NULL DEFAULT 0,
                    error_code text,
                    error_message text,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    settled_at timestamptz,
                    CONSTRAINT turns_session_seq_key UNIQUE (session_id, seq)
                )
                """,
                "CREATE INDEX turns_queued_idx ON turns (session_id, seq) WHERE state = 'queued'",
            ]
        ),
        Migration(
            version: 6,
            name: "outbox rows name their session",
            statements: [
                // The platform's notice is built from the session's row when it is sent
                // (TopicCompletion); rows queued before keep their payload, unused.
                "ALTER TABLE completion_outbox ALTER COLUMN payload DROP NOT NULL"
            ]
        ),
        Migration(
            version: 7,
            name: "accounts",
            statements: [
                // The chat page's accounts (ACCOUNTS=on): a user id and its scrypt hash
                // in PHC string form (PasswordHasher).
                """
                CREATE TABLE accounts (
                    user_id text PRIMARY KEY,
                    password_hash text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    last_login_at timestamptz
                )
                """
            ]
        ),
        Migration(
            version: 8,
            name: "whatsapp messages",
            statements: [
                // The WhatsApp channel's inbox and outbox in one row per message
                // (WhatsAppInbox): stored before the webhook answers 200, then taken
                // through its states by one gateway's relay at a time (a claim whose
                // lease is next_attempt_at). `seq` is the order per sender.
                """
                CREATE TABLE whatsapp_messages (
                    message_id text PRIMARY KEY,
                    seq bigint GENERATED ALWAYS AS IDENTITY,
                    phone_number_id text NOT NULL,
                    sender text NOT NULL,
                    kind text NOT NULL CHECK (kind IN ('text', 'audio', 'unsupported')),
                    text text,
                    media_id text,
                    received_at timestamptz NOT NULL DEFAULT now(),
                    state text NOT NULL DEFAULT 'received' CHECK (state IN ('received', 'submitted', 'answered', 'sent', 'failed')),
                    session_id uuid,
                    turn_id uuid,
                    submissions integer NOT NULL DEFAULT 0,
                    reply text,
                    parts_sent integer NOT NULL DEFAULT 0,
                    attempts integer NOT NULL DEFAULT 0,
                    next_attempt_at timestamptz NOT NULL DEFAULT now(),
                    claim_token uuid,
                    last_error text,
                    finished_at timestamptz
                )
                """,
                "CREATE INDEX whatsapp_messages_open_idx ON whatsapp_messages (sender, seq) WHERE finished_at IS NULL",
            ]
        ),
    ]
}

/// Applies migrations. Several processes may start at once: the whole run holds a
/// transaction-scoped advisory lock, so one applies and the others then find the
/// work done. A failing migration rolls back entirely.
public struct Migrator: Sendable {
    /// An arbitrary constant that names Parley's migration lock.
    static let advisoryLockKey: Int64 = 0x7061_726c_6579

    public let migrations: [Migration]

    public init(migrations: [Migration] = ParleyMigrations.all) {
        self.migrations = migrations
    }

    /// Returns the versions this call applied (empty when the schema was current).
    @discardableResult
    public func migrate(_ client: PostgresClient, logger: Logger) async throws(StoreError) -> [Int] {
        do {
            return try await client.withTransaction(logger: logger) { connection -> [Int] in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.advisoryLockKey))", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """,
                    logger: logger
                )
                var applied = Set<Int>()
                for try await version in try await connection.query("SELECT version FROM schema_migrations", logger: logger).decode(Int.self) {
                    applied.insert(version)
                }
                var newlyApplied: [Int] = []
                for migration in migrations where !applied.contains(migration.version) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                        logger: logger
                    )
                    logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                    newlyApplied.append(migration.version)
                }
                return newlyApplied
            }
        } catch {
            throw StoreError.wrapping(error)
        }
    }
}
