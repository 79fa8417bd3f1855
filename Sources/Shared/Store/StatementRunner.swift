import Logging
import PostgresNIO

/// Runs the statements of a turn's path as named prepared statements: PostgreSQL
/// parses and plans each once per connection, and every later run is only a Bind and
/// an Execute (measured here: a short read costs a third of its unprepared self, see
/// docs/performance.md). A pooler that cannot keep prepared statements across
/// transactions (PgBouncer before 1.21 in transaction mode) needs them off
/// (`DATABASE_PREPARED_STATEMENTS=off`): then the same SQL and bindings go as an
/// unnamed statement.
///
/// PostgresNIO remembers a statement that failed to prepare as failed for the rest of
/// its connection's life: a prepare that met a missing table (a gateway started before
/// the migration), a lock held past the statement timeout or a pooler's refusal would
/// fail every later run on that connection, long after the cause is gone. A server
/// error that may have come from the prepare therefore closes the connection, and the
/// pool opens a fresh one; a constraint violation cannot come from a prepare and keeps it.
struct StatementRunner: Sendable {
    let client: PostgresClient
    let prepared: Bool
    let logger: Logger

    func rows<Statement: PostgresPreparedStatement>(_ statement: Statement) async throws -> [Statement.Row] where Statement.Row: Sendable {
        guard prepared else {
            var rows: [Statement.Row] = []
            let query = PostgresQuery(unsafeSQL: Statement.sql, binds: try statement.makeBindings())
            for try await row in try await client.query(query, logger: logger) { rows.append(try statement.decodeRow(row)) }
            return rows
        }
        let logger = self.logger
        return try await client.withConnection { connection in
            do {
                var rows: [Statement.Row] = []
                for try await row in try await connection.execute(statement, logger: logger) { rows.append(row) }
                return rows
            } catch let error as PSQLError where Self.mayHaveFailedThePrepare(error) {
                logger.warning(
                    "closing a database connection after a statement failed on it",
                    metadata: ["statement": "\(Statement.name)", "sqlstate": "\(error.serverInfo?[.sqlState] ?? "")"]
                )
                try? await connection.close()
                throw error
            }
        }
    }

    /// A server error other than a constraint violation (SQLSTATE class 23, raised
    /// only when a statement runs).
    static func mayHaveFailedThePrepare(_ error: PSQLError) -> Bool {
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else { return false }
        return !state.hasPrefix("23")
    }
}
