import Logging
import ParleySupport
import PostgresNIO
import ServiceLifecycle
import Shared

/// Applies the schema migrations at start-up (retrying while the database is not
/// reachable) and then opens `done`, which the turn processor waits for.
struct MigrationService: Service {
    let client: PostgresClient
    /// Where to write the topic catalog of `TOPICS_FILE`, and the catalog.
    let catalog: (table: PostgresTopicCatalog, topics: [CatalogTopic])?
    let done: Gate
    let logger: Logger

    func run() async throws {
        var backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(10))
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await Migrator().migrate(client, logger: logger)
                if let catalog {
                    try await catalog.table.replace(with: catalog.topics)
                    logger.info("topic catalog loaded", metadata: ["topics": "\(catalog.topics.count)"])
                }
                done.open()
                return
            } catch {
                logger.error("migrations failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff.next())
            }
        }
    }
}
