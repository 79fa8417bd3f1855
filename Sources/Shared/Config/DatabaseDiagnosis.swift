import Foundation
import Logging
import NIOSSL
import ParleySupport
import PostgresNIO
import ServiceLifecycle

/// Why the database cannot be used, found by one connection of its own: the pool
/// only says `connectionCreationCircuitBreakerTripped`, which hides whether the
/// database is down (wait for it) or `DATABASE_URL` is wrong (it will never work).
public enum DatabaseProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server refused these settings: a wrong password, user or database name.
    case misconfigured(ConfigurationError)
    /// The server cannot be reached or is not ready; it may come back.
    case unreachable(String)

    public var description: String {
        switch self {
        case .misconfigured(let error): error.description
        case .unreachable(let why): "the database is unreachable: \(why)"
        }
    }
}

extension DatabaseSettings {
    /// SQLSTATEs with which a server refuses a login that will never succeed as it is.
    static let refusedLogin: [String: String] = [
        "28P01": "the password is wrong",
        "28000": "the user may not log in",
        "3D000": "the database does not exist",
        "42501": "the user may not connect to the database",
    ]

    /// Connects once and says what is wrong, or nil when a connection works.
    public func diagnose(logger: Logger, timeout: Duration = .seconds(5)) async -> DatabaseProblem? {
        do {
            let connection = try await withTimeout(timeout) { [self] in
                try await PostgresConnection.connect(configuration: try connectionConfiguration(), id: 0, logger: logger)
            }
            try? await connection.close()
            return await startupParametersProblem(logger: logger, timeout: timeout)
        } catch let error as PSQLError {
            if let state = error.serverInfo?[.sqlState], let meaning = Self.refusedLogin[state] {
                let reason = error.serverInfo?[.message] ?? meaning
                return .misconfigured(
                    ConfigurationError(
                        variable: "DATABASE_URL",
                        problem: "is refused by \(host):\(port): \(meaning) (\(state) \(reason)); \(redacted)"
                    )
                )
            }
            return .unreachable(error.serverInfo?[.message] ?? "\(error.code)")
        } catch {
            return .unreachable("\(error)")
        }
    }

    private func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch self.tls {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// A login works: whether the server also takes the startup parameters the pool
    /// sends. A pooler such as PgBouncer refuses those it does not know.
    private func startupParametersProblem(logger: Logger, timeout: Duration) async -> DatabaseProblem? {
        guard !startupParameters.isEmpty else { return nil }
        do {
            var configuration = try connectionConfiguration()
            configuration.options.additionalStartupParameters = startupParameters
            let connection = try await withTimeout(timeout) { [configuration] in
                try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            }
            try? await connection.close()
            return nil
        } catch let error as PSQLError {
            guard let message = error.serverInfo?[.message], message.hasPrefix("unsupported startup parameter") else { return nil }
            return .misconfigured(
                ConfigurationError(
                    variable: "DATABASE_POOLER",
                    problem:
                        "is \(pooler.rawValue), but \(host):\(port) refuses startup parameters (\(message)): it is a pooler such as PgBouncer; set DATABASE_POOLER=pgbouncer"
                )
            )
        } catch {
            return nil
        }
    }
}

/// Checks `DATABASE_URL` at start-up: waits while the database is unreachable (it
/// may be starting too), and stops the process with an error naming the variable
/// when the server refuses the settings — retrying those would never succeed. Then
/// it stays until shutdown (a service that returns would end the service group).
public struct DatabaseStartupCheck: Service {
    let settings: DatabaseSettings
    let logger: Logger

    public init(settings: DatabaseSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    public func run() async throws {
        var backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(10))
        var warned = false
        checking: while !Task.isShuttingDownGracefully, !Task.isCancelled {
            switch await settings.diagnose(logger: logger) {
            case nil:
                break checking
            case .misconfigured(let error):
                logger.error("the database refuses DATABASE_URL; stopping", metadata: ["error": "\(error)", "database": "\(settings.redacted)"])
                throw error
            case .unreachable(let why):
                if !warned {
                    logger.warning("the database is unreachable; waiting for it", metadata: ["error": "\(why)", "database": "\(settings.redacted)"])
                }
                warned = true
                let pause = backoff.next()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            }
        }
        try? await gracefulShutdown()
    }
}

extension DatabaseSettings {
    /// What `/health` says when a ping failed: the server's reason when it refuses the
    /// settings, else the ping's own error.
    public func healthProblem(afterPingFailed error: any Error, logger: Logger) async -> String {
        if case .misconfigured(let problem) = await diagnose(logger: logger, timeout: .seconds(2)) { return problem.description }
        return "\(error)"
    }
}
