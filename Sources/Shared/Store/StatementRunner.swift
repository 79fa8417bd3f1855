import Logging
import PostgresNIO

/// Runs the statements of a turn's path as named prepared statements: PostgreSQL
/// parses and plans each once per connection, and every later run is only a Bind and
/// an Execute (measured here: a short read costs a third of its unprepared self, see
/// docs/performance.md). A pooler that cannot keep prepared statements across
/// transactions (PgBouncer before 1.21 in transaction mode) needs them off
/// (`DATABASE_PREPARED_STATEMENTS=off`): then the same SQL and bindings go as an
/// unnamed statement.
struct StatementRunner: Sendable {
    let client: PostgresClient
    let prepared: Bool
    let logger: Logger

    func rows<Statement: PostgresPreparedStatement>(_ statement: Statement) async throws -> [Statement.Row] where Statement.Row: Sendable {
        var rows: [Statement.Row] = []
        if prepared {
            for try await row in try await client.execute(statement, logger: logger) { rows.append(row) }
        } else {
            let query = PostgresQuery(unsafeSQL: Statement.sql, binds: try statement.makeBindings())
            for try await row in try await client.query(query, logger: logger) { rows.append(try statement.decodeRow(row)) }
        }
        return rows
    }
}
