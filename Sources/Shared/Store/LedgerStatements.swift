import Foundation
import PostgresNIO

// The turn ledger's statements on a turn's path, prepared once per connection
// (`StatementRunner`), with their parameters' types declared.
//
// Each one that looks up a queued turn names its session too (`session_id = …`): with
// only `turn_id = … AND state = 'queued'` PostgreSQL may pick the small partial index
// of queued turns over the primary key — it did whenever its statistics were taken
// with few turns queued — and then read every queued turn of every session to find
// one. Under a backlog that made each take cost 13 ms and the stack collapse (issue
// 11, docs/performance.md); with the session named, either index reads a handful.

/// Takes the turn for an attempt when it may be generated now; returns the attempt
/// number, or no row when it may not.
struct TakeStatement: PostgresPreparedStatement {
    static let sql = text()

    /// The take with its parameters $1–$6 as `makeBindings` orders them, and
    /// `conditions` (more `AND …`) for a statement that takes only in some cases
    /// (`TurnOpeningStatement`).
    static func text(alsoWhen conditions: String = "") -> String {
        """
        UPDATE turns t SET holder = $1, holder_copy = $2, held_until = now() + make_interval(secs => $3), attempts = t.attempts + 1
        WHERE t.turn_id = $4 AND t.session_id = $6 AND t.state = 'queued'
          AND (t.holder IS NULL OR t.holder = $1 OR t.held_until < now() OR ($5 AND t.holder_copy IS NOT DISTINCT FROM $2))
          AND NOT EXISTS (\(PostgresTurnLedger.openEarlierTurn))\(conditions)
        RETURNING t.attempts
        """
    }
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .uuid, .float8, .uuid, .bool, .uuid]
    typealias Row = Int

    var turnID: UUID
    var sessionID: UUID
    var attempt: LedgerAttempt
    var holdSeconds: Double

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 6)
        bindings.append(attempt.id)
        bindings.append(attempt.copy)
        bindings.append(holdSeconds)
        bindings.append(turnID)
        bindings.append(attempt.takeover)
        bindings.append(sessionID)
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

/// The session of a turn, by the primary key: how `RenewStatement` and `SettleStatement`,
/// which are given only the turn, name its session.
private let sessionOfTurn = "(SELECT session_id FROM turns WHERE turn_id = $1)"

/// Extends the hold of the attempt ($2) on the turn ($1); a row when it still holds it.
struct RenewStatement: PostgresPreparedStatement {
    static let sql = """
        UPDATE turns SET held_until = now() + make_interval(secs => $3)
        WHERE turn_id = $1 AND session_id = \(sessionOfTurn) AND holder = $2 AND state = 'queued'
        RETURNING 1
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .uuid, .float8]
    typealias Row = Int

    var turnID: UUID
    var attempt: LedgerAttempt
    var holdSeconds: Double

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(turnID)
        bindings.append(attempt.id)
        bindings.append(holdSeconds)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Int.self) }
}

/// Ends the turn ($1) without a stored reply, as `state` with its error: true when
/// this attempt ended it, or when the ledger does not know the turn (then nobody else
/// holds it either). A redelivery may end a turn its copy's earlier attempt still
/// holds (that attempt is gone).
struct SettleStatement: PostgresPreparedStatement {
    static let sql = """
        WITH ended AS (
            UPDATE turns SET state = $2, holder = NULL, held_until = NULL, settled_at = now(), error_code = $3::text, error_message = $4::text
            WHERE turn_id = $1 AND session_id = \(sessionOfTurn) AND state = 'queued'
              AND (holder IS NULL OR holder = $5 OR held_until < now() OR ($6 AND holder_copy IS NOT DISTINCT FROM $7::uuid))
            RETURNING 1
        )
        SELECT EXISTS (SELECT 1 FROM ended) OR NOT EXISTS (SELECT 1 FROM turns WHERE turn_id = $1)
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .text, .text, .text, .uuid, .bool, .uuid]
    typealias Row = Bool

    var turnID: UUID
    var attempt: LedgerAttempt
    var state: TurnLedgerState
    var failure: SettledFailure?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 7)
        bindings.append(turnID)
        bindings.append(state.rawValue)
        bindings.append(failure?.code.rawValue)
        bindings.append(failure?.message)
        bindings.append(attempt.id)
        bindings.append(attempt.takeover)
        bindings.append(attempt.copy)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Bool.self) }
}
