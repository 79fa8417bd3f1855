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
        preparedStatements = try environment.bool("DATABASE_PREPARED_STATEMENTS", default: true)
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
        // The server ends a statement that runs (or waits for a lock) too long: a
        // client-side time limit cannot interrupt a query already sent.
        // The turn's prepared statements are point lookups and single-row writes by key:
        // one generic plan serves every run, where PostgreSQL's default planned each of
        // the first five runs (per connection) and then any whose custom plan looked
        // cheaper — a quarter of a millisecond a run for the prompt's read.
        configuration.options.additionalStartupParameters = [
            ("statement_timeout", "\(statementTimeoutMilliseconds)"),
            ("plan_cache_mode", "force_generic_plan"),
        ]
        return configuration
    }

    /// For logs: no password.
    public var redacted: String { "postgres://\(user)@\(host):\(port)/\(database)" }
}
