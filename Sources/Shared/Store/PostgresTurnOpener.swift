import Foundation
import Logging
import PostgresNIO

/// `TurnOpener` on PostgreSQL: one statement (`TurnOpeningStatement`) where the steps
/// were three round trips (`TurnStartStatement`, `TakeStatement`,
/// `PromptMaterialStatement`). It needs the conversation store's tables and the
/// ledger's in one database, which is how Parley runs.
public struct PostgresTurnOpener: TurnOpener {
    private let timeout: Duration
    private let statements: StatementRunner

    /// `preparedStatements`: see `StatementRunner` (`DATABASE_PREPARED_STATEMENTS`).
    public init(client: PostgresClient, logger: Logger, timeout: Duration = .seconds(5), preparedStatements: Bool = true) {
        self.timeout = timeout
        self.statements = StatementRunner(client: client, prepared: preparedStatements, logger: logger)
    }

    public func open(
        _ turn: TurnEnvelope,
        attempt: LedgerAttempt,
        holdFor: Duration,
        historyLimit: Int,
        mayTake: Bool
    ) async throws(StoreError) -> TurnOpening {
        let statement = TurnOpeningStatement(
            turn: turn,
            attempt: attempt,
            holdSeconds: holdFor.timeInterval,
            historyLimit: historyLimit,
            mayTake: mayTake
        )
        let statements = self.statements
        let row = try await storeCall(timeout: timeout) { try await statements.rows(statement).first }
        guard let row else { throw .queryFailed("opening turn \(turn.turnID.lowercased) returned no row") }
        let start = PostgresConversationStore.turnStart(turn.sessionID, from: (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8))
        guard let attemptNumber = row.9 else { return TurnOpening(start: start, taken: nil) }
        let material = try PostgresConversationStore.promptMaterial(
            turn.sessionID,
            from: (row.10, row.11, row.12, row.13, row.14, row.15, row.16, row.17, row.18, row.19, row.20, row.21, row.22)
        )
        return TurnOpening(start: start, taken: .init(attemptNumber: attemptNumber, material: material))
    }
}

/// The session and the stored reply (`TurnStartStatement`'s columns), the take
/// (`TakeStatement`, only for a turn with no stored reply whose session is the user's
/// and active) and, when it took, the prompt's material (`PromptMaterialStatement`'s
/// columns): all in one snapshot, so the history read is the one the take's look at
/// the session's earlier turns saw — a reply stored by the turn before is either in
/// the history, or the take fails and the worker waits for that turn to end.
struct TurnOpeningStatement: PostgresPreparedStatement {
    static let sql = """
        WITH taken AS (
            \(TakeStatement.text(alsoWhen: """

              AND $7
              AND EXISTS (SELECT 1 FROM sessions a WHERE a.id = $6 AND a.user_id = $8 AND a.status = 'active')
              AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.turn_id = $4 AND m.role = 'assistant')
            """))
        )
        SELECT \(TurnStartStatement.columns), (SELECT attempts FROM taken), \(PromptMaterialStatement.columns)
        FROM (SELECT 1) AS one
        \(TurnStartStatement.joins(session: "$6", turn: "$4"))
        \(PromptMaterialStatement.joins(session: "$6", limit: "$9", when: "EXISTS (SELECT 1 FROM taken)"))
        """
    static let bindingDataTypes: [PostgresDataType] = TakeStatement.bindingDataTypes + [.bool, .text, .int8]
    typealias Row = (
        String?, Int64?, Int64?, String?, Date?, Date?, Int64?, String?, Date?,
        Int?,
        String?, String?, [String]?, [String]?, String?, String?, String?, [String]?, String?, [Int64]?, [String]?, [String]?, [Date]?
    )

    var turn: TurnEnvelope
    var attempt: LedgerAttempt
    var holdSeconds: Double
    var historyLimit: Int
    var mayTake: Bool

    func makeBindings() throws -> PostgresBindings {
        let take = TakeStatement(turnID: turn.turnID, sessionID: turn.sessionID, attempt: attempt, holdSeconds: holdSeconds)
        var bindings = try take.makeBindings()
        bindings.append(mayTake)
        bindings.append(turn.userID)
        bindings.append(historyLimit)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
