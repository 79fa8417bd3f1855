import Foundation
import NIOSSL
import PostgresNIO

/// PostgreSQL connection settings from `DATABASE_URL`.
///
/// Accepts `postgres://`, `postgresql://` and the SQLAlchemy form
/// `postgresql+asyncpg://` (the driver suffix is ignored), with
/// `?sslmode=disable|prefer|require` (default `disable`: the database is on a
/// private network or loopback in every deployment Parley ships).
public struct DatabaseSettings: Sendable, Equatable {
    public enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    public var maximumConnections: Int
    public var statementTimeoutMilliseconds = 10_000
    /// Whether the statements of a turn's path run as named prepared statements
    /// (`DATABASE_PREPARED_STATEMENTS`, default on; off behind a pooler that cannot
    /// keep them, such as PgBouncer before 1.21 in transaction mode).
    public var preparedStatements = true
    /// What stands between Parley and PostgreSQL (`DATABASE_POOLER`).
    public var pooler = Pooler.none

    public enum Pooler: String, Sendable, CaseIterable {
        /// PostgreSQL itself, or a pooler in session mode.
        case none
        /// PgBouncer in transaction mode: a transaction may run on any server connection,
        /// so nothing is kept per connection — no named prepared statements, and no
        /// startup parameters (PgBouncer refuses those it does not know; set them on the
        /// role: docs/operations.md, "PostgreSQL behind PgBouncer").
        case pgbouncer
    }

    public init(url string: String, maximumConnections: Int = 10) throws(ConfigurationError) {
        let problem = "must look like postgres://user:password@host:5432/database"
        guard let components = URLComponents(string: string), let scheme = components.scheme else {
            throw ConfigurationError(variable: "DATABASE_URL", problem: problem)
        }
        let base = scheme.split(separator: "+").first.map(String.init) ?? scheme
        guard base == "postgres" || base == "postgresql" else {
            throw ConfigurationError(variable: "DATABASE_URL", problem: "has scheme \"\(scheme)\"; \(problem)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw ConfigurationError(variable: "DATABASE_URL", problem: "has no host; \(problem)")
        }
        guard (1...65535).contains(components.port ?? 5432) else {
            throw ConfigurationError(variable: "DATABASE_URL", problem: "has port \(components.port ?? 0); a port is 1...65535")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else {
            throw ConfigurationError(variable: "DATABASE_URL", problem: "names no database; \(problem)")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.user = components.user?.removingPercentEncoding ?? "postgres"
        self.password = components.password?.removingPercentEncoding
        self.database = database
        let sslmode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable"
        guard let tls = TLSMode(rawValue: sslmode) else {
            throw ConfigurationError(variable: "DATABASE_URL", problem: "has sslmode=\(sslmode); use disable, prefer or require")
        }
        self.tls = tls
        self.maximumConnections = maximumConnections
    }

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        try self.init(
            url: environment.string("DATABASE_URL", default: "postgres://parley:parley@127.0.0.1:5432/parley"),
            maximumConnections: try environment.int("DATABASE_MAX_CONNECTIONS", default: 10, range: 1...500)
        )
        let pooler = environment.string("DATABASE_POOLER", default: "none").lowercased()
        guard let parsed = Pooler(rawValue: pooler) else {
            throw ConfigurationError(variable: "DATABASE_POOLER", problem: "must be none or pgbouncer, got \"\(pooler)\"")
        }
        self.pooler = parsed
        preparedStatements = try environment.bool("DATABASE_PREPARED_STATEMENTS", default: parsed == .none)
        guard !(preparedStatements && parsed == .pgbouncer) else {
            throw ConfigurationError(
                variable: "DATABASE_PREPARED_STATEMENTS",
                problem:
                    "is on with DATABASE_POOLER=pgbouncer: in transaction mode a statement prepared on one server connection is unknown on the next"
            )
        }
    }

    /// What each connection sets at its start: a server-side time limit per statement
    /// (a client-side one cannot interrupt a query already sent), and generic plans for
    /// the turn's prepared statements — point lookups and single-row writes by key, for
    /// which PostgreSQL's default planned each of the first five runs per connection (a
    /// quarter of a millisecond a run for the prompt's read). None behind PgBouncer.
    public var startupParameters: [(String, String)] {
        guard pooler == .none else { return [] }
        return [("statement_timeout", "\(statementTimeoutMilliseconds)"), ("plan_cache_mode", "force_generic_plan")]
    }

    public var clientConfiguration: PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch self.tls {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(.makeClientConfiguration())
        case .require: tls = .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: host,
            port: port,
            username: user,
            password: password,
            database: database,
            tls: tls
        )
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }

    /// For logs: no password.
    public var redacted: String { "postgres://\(user)@\(host):\(port)/\(database)" }
}
