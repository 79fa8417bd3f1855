import Foundation
import Logging
import ParleySupport
import PostgresNIO
import Shared

/// `parley-worker migrate`: applies the database migrations and loads the topic
/// catalog (`TOPICS_FILE`), then exits — the one-shot step that a deployment (the
/// compose file's `migrate` service) runs before the gateways and workers. It needs
/// only `DATABASE_URL` (and `TOPICS_FILE`); it waits up to `MIGRATE_TIMEOUT_SECONDS`
/// (default 60) for the database. Workers still apply missing migrations themselves.
enum MigrateCommand {
    struct Settings: Sendable {
        var database: DatabaseSettings
        var topics: [CatalogTopic]?
        var timeout: Duration
        var logLevel: Logger.Level

        init(environment: EnvironmentReader) throws(ConfigurationError) {
            database = try DatabaseSettings(environment: environment)
            topics = try environment.string("TOPICS_FILE").map { path throws(ConfigurationError) in try TopicCatalogFile.load(path: path) }
            timeout = try environment.seconds("MIGRATE_TIMEOUT_SECONDS", default: .seconds(60), range: 1...3600)
            logLevel = try Logger.Level(environment: environment)
        }
    }

    static func run() async -> Int32 {
        let settings = settingsOrExit(of: "parley-worker migrate") { environment throws(ConfigurationError) in try Settings(environment: environment)
        }
        bootstrapObservability(logLevel: settings.logLevel)
        let logger = Logger(label: "parley-worker-migrate")
        let client = PostgresClient(configuration: settings.database.clientConfiguration, backgroundLogger: logger)
        return await withTaskGroup(of: Int32?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            group.addTask {
                // A login the server refuses will never work: say so at once (the pool
                // would wait out the whole timeout).
                if case .misconfigured(let problem) = await settings.database.diagnose(logger: logger) {
                    logger.critical("the database refuses DATABASE_URL", metadata: ["error": "\(problem)"])
                    return 2
                }
                let deadline = ContinuousClock.now.advanced(by: settings.timeout)
                var backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(5))
                while true {
                    do {
                        // The pool waits for a connection as long as it takes: the
                        // deadline is ours to keep.
                        let remaining = max(ContinuousClock.now.duration(to: deadline), .milliseconds(100))
                        let applied = try await withTimeout(remaining) {
                            let applied = try await Migrator().migrate(client, logger: logger)
                            if let topics = settings.topics {
                                try await PostgresTopicCatalog(client: client, logger: logger).replace(with: topics)
                            }
                            return applied
                        }
                        logger.info(
                            "database ready",
                            metadata: ["applied": "\(applied.map(String.init).joined(separator: ","))", "topics": "\(settings.topics?.count ?? 0)"]
                        )
                        return 0
                    } catch {
                        if case .misconfigured(let problem) = await settings.database.diagnose(logger: logger) {
                            logger.critical("the database refuses DATABASE_URL", metadata: ["error": "\(problem)"])
                            return 2
                        }
                        guard ContinuousClock.now < deadline else {
                            logger.critical("migrations failed", metadata: ["error": "\(error)"])
                            return 1
                        }
                        logger.warning("database not ready; retrying", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: backoff.next())
                    }
                }
            }
            defer { group.cancelAll() }
            for await status in group {
                if let status { return status }
            }
            return 1
        }
    }
}
