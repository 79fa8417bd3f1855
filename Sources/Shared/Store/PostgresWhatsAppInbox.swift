import Foundation
import Logging
import PostgresNIO

/// `WhatsAppInbox` on PostgreSQL (the `whatsapp_messages` table, migration 8). Claims
/// use `FOR UPDATE SKIP LOCKED` and are committed at once: no transaction stays open
/// while a relay waits for a turn or the Graph API.
public struct PostgresWhatsAppInbox: WhatsAppInbox {
    private let client: PostgresClient
    private let logger: Logger
    private let timeout: Duration

    public init(client: PostgresClient, logger: Logger, timeout: Duration = .seconds(5)) {
        self.client = client
        self.logger = logger
        self.timeout = timeout
    }

    public func store(_ messages: [WhatsAppInbound]) async throws(StoreError) -> Set<String> {
        guard !messages.isEmpty else { return [] }
        let (client, logger) = (self.client, self.logger)
        return try await storeCall(timeout: timeout) {
            // One transaction: a webhook's messages are stored together or not at all
            // (then the webhook is not acknowledged, and the Cloud API sends it again).
            try await client.withTransaction(logger: logger) { connection in
                // A sender's messages get their `seq` in the order their deliveries
                // commit: one delivery at a time per sender (a sequence number taken
                // by a transaction that commits later would sort before one already
                // claimed).
                for sender in Set(messages.map(\.sender)).sorted() {
                    try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(sender), 7))", logger: logger)
                }
                var stored = Set<String>()
                for message in messages {
                    let rows = try await connection.query(
                        """
                        INSERT INTO whatsapp_messages (message_id, phone_number_id, sender, kind, text, media_id)
                        VALUES (\(message.messageID), \(message.phoneNumberID), \(message.sender), \(message.kind.rawValue), \(message.text),
                                \(message.mediaID))
                        ON CONFLICT (message_id) DO NOTHING
                        RETURNING message_id
                        """,
                        logger: logger
                    )
                    for try await id in rows.decode(String.self) { stored.insert(id) }
                }
                return stored
            }
        }
    }

    public func claim(limit: Int, lease: Duration) async throws(StoreError) -> [WhatsAppMessage] {
        let (client, logger) = (self.client, self.logger)
        let seconds = Double(lease.wholeMilliseconds) / 1000
        return try await storeCall(timeout: timeout) {
            let rows = try await client.query(
                """
                WITH due AS (
                    SELECT m.message_id FROM whatsapp_messages m
                    WHERE m.finished_at IS NULL AND m.next_attempt_at <= now()
                      AND NOT EXISTS (
                          SELECT 1 FROM whatsapp_messages o WHERE o.sender = m.sender AND o.finished_at IS NULL AND o.seq < m.seq
                      )
                    ORDER BY m.seq LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE whatsapp_messages w
                SET attempts = w.attempts + 1, next_attempt_at = now() + make_interval(secs => \(seconds)), claim_token = gen_random_uuid()
                FROM due WHERE w.message_id = due.message_id
                RETURNING w.message_id, w.phone_number_id, w.sender, w.kind, w.text, w.media_id, w.state, w.session_id, w.turn_id,
                          w.submissions, w.reply, w.parts_sent, w.attempts, w.claim_token, w.last_error, w.seq
                """,
                logger: logger
            )
            var claimed: [(Int64, WhatsAppMessage)] = []
            let columns = (String, String, String, String, String?, String?, String, UUID?, UUID?, Int32, String?, Int32, Int32, UUID, String?, Int64)
                .self
            for try await (id, phone, sender, kind, text, media, state, session, turn, submissions, reply, partsSent, attempts, claim, lastError, seq)
                in rows.decode(columns)
            {
                let inbound = WhatsAppInbound(
                    messageID: id,
                    phoneNumberID: phone,
                    sender: sender,
                    kind: WhatsAppInbound.Kind(rawValue: kind) ?? .unsupported,
                    text: text,
                    mediaID: media
                )
                let message = WhatsAppMessage(
                    inbound: inbound,
                    state: WhatsAppMessage.State(rawValue: state) ?? .received,
                    sessionID: session,
                    turnID: turn,
                    submissions: Int(submissions),
                    reply: reply,
                    partsSent: Int(partsSent),
                    attempts: Int(attempts),
                    claim: claim,
                    lastError: lastError
                )
                claimed.append((seq, message))
            }
            // RETURNING keeps no order.
            return claimed.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    public func renew(_ message: WhatsAppMessage, lease: Duration) async throws(StoreError) -> Bool {
        let (client, logger) = (self.client, self.logger)
        let seconds = Double(lease.wholeMilliseconds) / 1000
        return try await storeCall(timeout: timeout) {
            let rows = try await client.query(
                """
                UPDATE whatsapp_messages SET next_attempt_at = now() + make_interval(secs => \(seconds))
                WHERE message_id = \(message.inbound.messageID) AND claim_token = \(message.claim) AND finished_at IS NULL
                RETURNING 1
                """,
                logger: logger
            )
            for try await _ in rows.decode(Int.self) { return true }
            return false
        }
    }

    public func save(_ message: WhatsAppMessage) async throws(StoreError) -> Bool {
        let (client, logger) = (self.client, self.logger)
        return try await storeCall(timeout: timeout) {
            let rows = try await client.query(
                """
                UPDATE whatsapp_messages
                SET state = \(message.state.rawValue), text = \(message.inbound.text), session_id = \(message.sessionID),
                    turn_id = \(message.turnID), submissions = \(message.submissions), reply = \(message.reply),
                    parts_sent = \(message.partsSent), last_error = \(message.lastError.map { String($0.prefix(1000)) }),
                    finished_at = CASE WHEN \(message.state.isFinished) THEN now() END
                WHERE message_id = \(message.inbound.messageID) AND claim_token = \(message.claim) AND finished_at IS NULL
                RETURNING 1
                """,
                logger: logger
            )
            for try await _ in rows.decode(Int.self) { return true }
            return false
        }
    }

    public func release(_ message: WhatsAppMessage, error: String?, retryIn: Duration) async throws(StoreError) {
        let (client, logger) = (self.client, self.logger)
        let seconds = Double(retryIn.wholeMilliseconds) / 1000
        try await storeCall(timeout: timeout) {
            try await client.query(
                """
                UPDATE whatsapp_messages
                SET claim_token = NULL, next_attempt_at = now() + make_interval(secs => \(seconds)),
                    last_error = coalesce(\(error.map { String($0.prefix(1000)) }), last_error)
                WHERE message_id = \(message.inbound.messageID) AND claim_token = \(message.claim) AND finished_at IS NULL
                """,
                logger: logger
            )
        }
    }

    public func standing(ofTurn turnID: UUID) async throws(StoreError) -> TurnStanding {
        let (client, logger) = (self.client, self.logger)
        return try await storeCall(timeout: timeout) {
            // A queued turn past its deadline that nobody holds is ended here, in the
            // ledger, as a worker would end it (`expired`): a copy of it still in the
            // broker is then never generated next to the turn sent in its place. The
            // margin covers clocks. (The select sees the row as it was before.)
            let rows = try await client.query(
                """
                WITH retired AS (
                    UPDATE turns SET state = 'failed', holder = NULL, held_until = NULL, settled_at = now(), error_code = 'expired',
                                     error_message = 'the message could not be answered before its deadline; send it again'
                    WHERE turn_id = \(turnID) AND state = 'queued' AND deadline < now() - interval '30 seconds'
                      AND (held_until IS NULL OR held_until < now())
                      AND NOT EXISTS (SELECT 1 FROM messages WHERE turn_id = \(turnID) AND role = 'assistant')
                    RETURNING 1
                )
                SELECT r.content, t.state, EXISTS (SELECT 1 FROM retired)
                FROM (SELECT 1) AS one
                LEFT JOIN turns t ON t.turn_id = \(turnID)
                LEFT JOIN messages r ON r.turn_id = \(turnID) AND r.role = 'assistant'
                """,
                logger: logger
            )
            for try await (reply, state, overdue) in rows.decode((String?, String?, Bool).self) {
                return TurnStanding(reply: reply, state: state.flatMap(TurnLedgerState.init(rawValue:)), overdue: overdue)
            }
            return .unknown
        }
    }

    public func backlog() async throws(StoreError) -> Int {
        let (client, logger) = (self.client, self.logger)
        return try await storeCall(timeout: timeout) {
            let rows = try await client.query("SELECT count(*) FROM whatsapp_messages WHERE finished_at IS NULL", logger: logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }
}
