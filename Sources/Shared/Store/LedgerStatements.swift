import Foundation
import PostgresNIO

// The turn ledger's statements on a turn's path, prepared once per connection
// (`StatementRunner`), with their parameters' types declared.

/// Takes the turn for an attempt when it may be generated now; returns the attempt
/// number, or no row when it may not.
struct TakeStatement: PostgresPreparedStatement {
    static let sql = """
        UPDATE turns t SET holder = $1, holder_copy = $2, held_until = now() + make_interval(secs => $3), attempts = t.attempts + 1
        WHERE t.turn_id = $4 AND t.state = 'queued'
          AND (t.holder IS NULL OR t.holder = $1 OR t.held_until < now() OR ($5 AND t.holder_copy IS NOT DISTINCT FROM $2))
          AND NOT EXISTS (\(PostgresTurnLedger.openEarlierTurn))
        RETURNING t.attempts
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .uuid, .float8, .uuid, .bool]
    typealias Row = Int

    var turnID: UUID
    var attempt: LedgerAttempt
    var holdSeconds: Double

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 5)
        bindings.append(attempt.id)
        bindings.append(attempt.copy)
        bindings.append(holdSeconds)
        bindings.append(turnID)
        bindings.append(attempt.takeover)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Int.self) }
}

/// Enters a turn at the next place in its session's order (`register`, and a worker's
/// late entry); entering it twice keeps its place.
struct EnterStatement: PostgresPreparedStatement {
    static let sql = EnterStatement.text(onConflict: "DO NOTHING")
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .uuid, .timestamptz, .timestamptz, .bool, .text, .bool]
    typealias Row = Void

    var turn: TurnEnvelope
    var late: Bool
    var withdrawn = false

    /// The statement with its conflict rule: `WithdrawStatement` marks an entered
    /// turn withdrawn instead.
    static func text(onConflict: String) -> String {
        """
        INSERT INTO turns (turn_id, session_id, seq, deadline, sent_at, late, state, settled_at)
        SELECT $1, $2, coalesce(max(seq), 0) + 1, $3, $4, $5, $6, CASE WHEN $7 THEN now() END
        FROM turns WHERE session_id = $2
        ON CONFLICT (turn_id) \(onConflict)
        """
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 7)
        bindings.append(turn.turnID)
        bindings.append(turn.sessionID)
        bindings.append(turn.ledgerDeadline)
        bindings.append(turn.sentAt)
        bindings.append(late)
        bindings.append(withdrawn ? "withdrawn" : "queued")
        bindings.append(withdrawn)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}

/// Marks the turn withdrawn whether or not it was entered: the primary key then makes
/// a register that commits later a no-op, and a register still in flight is waited
/// for and withdrawn after it.
struct WithdrawStatement: PostgresPreparedStatement {
    static let sql = EnterStatement.text(
        onConflict: "DO UPDATE SET state = 'withdrawn', settled_at = now() WHERE turns.state = 'queued' AND turns.holder IS NULL"
    )
    static let bindingDataTypes = EnterStatement.bindingDataTypes
    typealias Row = Void

    var turn: TurnEnvelope

    func makeBindings() throws -> PostgresBindings { try EnterStatement(turn: turn, late: false, withdrawn: true).makeBindings() }
    func decodeRow(_ row: PostgresRow) throws {}
}
