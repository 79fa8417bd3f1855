import AMQPClient
import Foundation
import Logging
import PostgresNIO
import Testing

@testable import Shared

/// The real servers the integration tests use, from the environment that
/// `scripts/test.sh` sets up (it starts a throwaway RabbitMQ and PostgreSQL).
enum TestEnvironment {
    struct Missing: Error, CustomStringConvertible {
        var variable: String
        var description: String { "\(variable) is not set: run the integration tests with scripts/test.sh, which starts RabbitMQ and PostgreSQL" }
    }

    static func value(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { throw Missing(variable: name) }
        return value
    }

    static func broker() throws -> AMQPEndpoint {
        let url = try value("PARLEY_TEST_AMQP_URL")
        return try #require(AMQPEndpoint(url: url), "PARLEY_TEST_AMQP_URL is not an amqp:// URL: \(url)")
    }

    static func database() throws -> DatabaseSettings {
        try DatabaseSettings(url: value("PARLEY_TEST_DATABASE_URL"))
    }

    /// A name no other test uses, for queues, exchanges and schemas.
    static func uniqueName(_ base: String) -> String {
        "\(base)_\(UUID().uuidString.prefix(8).lowercased())"
    }

    static var logger: Logger {
        var logger = Logger(label: "integration")
        logger.logLevel = .warning
        return logger
    }
}

/// Polls `condition` until it holds or `timeout` passes (tests never sleep for a fixed time).
func eventually(
    timeout: Duration = .seconds(10),
    _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out after \(timeout) waiting until \(what)", sourceLocation: sourceLocation)
    throw CancellationError()
}

/// The next element of an async sequence, or nil when none arrives within `timeout`.
func next<S: AsyncSequence & Sendable>(of sequence: S, within timeout: Duration = .seconds(10)) async throws -> S.Element?
where S.Element: Sendable {
    try await withThrowingTaskGroup(of: S.Element?.self) { group in
        group.addTask {
            var iterator = sequence.makeAsyncIterator()
            return try await iterator.next()
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
}

/// Runs `body` with a PostgreSQL client whose connections use their own schema, so
/// each test starts from an empty database; `maximumConnections` caps its pool.
func withIsolatedPostgres<T: Sendable>(
    maximumConnections: Int? = nil,
    _ body: @Sendable (PostgresClient, String) async throws -> T
) async throws -> T {
    let settings = try TestEnvironment.database()
    let schema = TestEnvironment.uniqueName("test")
    let admin = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: TestEnvironment.logger)
    var configuration = settings.clientConfiguration
    configuration.options.additionalStartupParameters.append(("search_path", schema))
    if let maximumConnections {
        configuration.options.minimumConnections = 0
        configuration.options.maximumConnections = maximumConnections
    }
    let client = PostgresClient(configuration: configuration, backgroundLogger: TestEnvironment.logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await admin.run() }
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        try await admin.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"))
        do {
            let result = try await body(client, schema)
            try await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"))
            return result
        } catch {
            _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"))
            throw error
        }
    }
}

/// A started publisher and consumer on the real broker, shut down after `body`.
struct BrokerFixture {
    let endpoint: AMQPEndpoint
    let topology: ParleyTopology

    init(deliveryLimit: Int = 5, maxLength: Int = 10_000) throws {
        endpoint = try TestEnvironment.broker()
        topology = ParleyTopology(prefix: TestEnvironment.uniqueName("it"), turnDeliveryLimit: deliveryLimit, turnQueueMaxLength: maxLength)
    }

    func publisher() -> AMQPPublisher {
        let publisher = AMQPPublisher(name: "test-publish", endpoint: endpoint, topology: topology.shared, logger: TestEnvironment.logger)
        publisher.start()
        return publisher
    }

    func consumer(queue: String? = nil, topology amqpTopology: AMQPTopology? = nil, prefetch: UInt16 = 10) -> AMQPConsumer {
        let consumer = AMQPConsumer(
            name: "test-consume",
            endpoint: endpoint,
            topology: amqpTopology ?? topology.shared,
            queue: queue ?? topology.turnsQueue,
            prefetch: prefetch,
            logger: TestEnvironment.logger
        )
        consumer.start()
        return consumer
    }

    func turnMessage(_ body: String, id: String = UUID().uuidString) -> AMQPOutgoingMessage {
        AMQPOutgoingMessage(
            exchange: topology.turnsExchange,
            routingKey: topology.turnRoutingKey,
            body: Array(body.utf8),
            messageID: id,
            mandatory: true
        )
    }
}

extension AMQPPublisher {
    /// Waits for the connection (the first publish of a test must not race the connect).
    func waitUntilConnected() async throws {
        try await eventually("the publisher is connected") { isConnected }
    }
}

extension AMQPConsumer {
    func waitUntilConnected() async throws {
        try await eventually("the consumer is connected") { isConnected }
    }
}
