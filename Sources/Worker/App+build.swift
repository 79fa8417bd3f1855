import AMQPClient
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import ParleySupport
import PostgresNIO
import ServiceLifecycle
import Shared

/// The worker's composition root: the only place that knows the concrete types.
/// Services are listed in dependency order and shut down in reverse: the HTTP
/// endpoint first, then the turn processor (which finishes its turns), then the
/// broker connections, then the database pool.
func buildWorker(settings: WorkerSettings, logger: Logger) -> ServiceGroup {
    var logger = logger
    logger[metadataKey: "worker_id"] = "\(settings.workerID)"
    let postgres = PostgresClient(configuration: settings.database.clientConfiguration, backgroundLogger: logger)
    let store = PostgresConversationStore(client: postgres, logger: logger)
    let topology = settings.broker.topology
    let publisher = AMQPPublisher(name: "worker-publish", endpoint: settings.broker.endpoint, topology: topology.shared, logger: logger)
    let consumer = AMQPConsumer(
        name: "worker-consume",
        endpoint: settings.broker.endpoint,
        topology: topology.shared,
        queue: topology.turnsQueue,
        prefetch: UInt16(settings.concurrency),
        logger: logger
    )
    let control = AMQPConsumer(
        name: "worker-control",
        endpoint: settings.broker.endpoint,
        topology: topology.worker(id: settings.workerID),
        queue: topology.controlQueue(workerID: settings.workerID),
        prefetch: 100,
        logger: logger
    )
    let httpClient = HTTPClient(eventLoopGroupProvider: .singleton)
    let cancellations = TurnCancellations()
    var handler = TurnHandler(
        store: store,
        holding: TurnHolding(ledger: PostgresTurnLedger(client: postgres, logger: logger)),
        generator: providerChain(settings: settings, httpClient: httpClient, logger: logger),
        prompts: PromptBuilder(
            systemPrompt: settings.systemPrompt,
            maxHistory: settings.maxConversationHistory,
            completionMarker: settings.completionMarker
        ),
        cancellations: cancellations
    )
    handler.completionMarker = settings.completionMarker
    let schemaReady = Gate()
    var processor = TurnProcessor(
        consumer: consumer,
        publisher: publisher,
        handler: handler,
        topology: topology,
        retryPause: settings.retryPause,
        startAfter: schemaReady,
        logger: logger
    )
    processor.coalescer = settings.coalescer
    let http = Application(
        router: workerRouter(store: store, database: settings.database, publisher: publisher, consumer: consumer, logger: logger),
        configuration: .init(address: .hostname(settings.httpHost, port: settings.httpPort), serverName: "parley-worker"),
        logger: logger
    )
    let migrations = MigrationService(
        client: postgres,
        catalog: settings.topics.map { (PostgresTopicCatalog(client: postgres, logger: logger), $0) },
        done: schemaReady,
        logger: logger
    )
    let outbox = PostgresCompletionOutbox(client: postgres, logger: logger)
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
        .init(service: postgres),
        .init(service: DatabaseStartupCheck(settings: settings.database, logger: logger)),
        .init(service: migrations, successTerminationBehavior: .ignore),
        .init(service: HTTPClientService(client: httpClient)),
        .init(service: OutboxBacklogSampler(outbox: outbox, startAfter: schemaReady, logger: logger)),
    ]
    if let platform = settings.platform {
        let sender = CompletionSender(
            outbox: outbox,
            platform: HTTPLearningPlatform(client: httpClient, settings: platform, logger: logger),
            settings: platform,
            pollInterval: settings.outboxPollInterval,
            startAfter: schemaReady,
            logger: logger
        )
        services.append(.init(service: sender))
    }
    var configuration = ServiceGroupConfiguration(
        services: services + [
            .init(service: publisher),
            .init(service: consumer),
            .init(service: control),
            .init(service: ControlListener(consumer: control, cancellations: cancellations, logger: logger)),
            .init(service: processor),
            .init(service: http),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
    // A turn still running then is cancelled; its delivery was not acked, so the
    // broker gives it to another worker (which answers it once: replies are stored
    // per turn).
    configuration.maximumGracefulShutdownDuration = settings.shutdownTimeout
    return ServiceGroup(configuration: configuration)
}

/// The providers of `LLM_PROVIDER` and `LLM_FALLBACK`, in order, each behind its own
/// circuit breaker, sharing one retry policy and one HTTP client.
func providerChain(settings: WorkerSettings, httpClient: HTTPClient, logger: Logger) -> ProviderChain {
    let transport = LLMTransport(httpClient: httpClient, attemptTimeout: settings.attemptTimeout, idleTimeout: settings.idleTimeout)
    let models: [any ChatModel] = settings.providers.compactMap { provider in
        switch provider {
        case .openai: settings.openAI.map { OpenAIChatClient(settings: $0, transport: transport) }
        case .gemini: settings.gemini.map { GeminiChatClient(settings: $0, transport: transport) }
        }
    }
    return ProviderChain(
        slots: models.map {
            .init(model: $0, breaker: CircuitBreaker(failureThreshold: settings.breakerFailures, cooldown: settings.breakerCooldown))
        },
        policy: settings.retry,
        streaming: settings.streaming,
        logger: logger
    )
}

private func workerRouter(
    store: PostgresConversationStore,
    database: DatabaseSettings,
    publisher: AMQPPublisher,
    consumer: AMQPConsumer,
    logger: Logger
) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: HTTPMetricsMiddleware())
    let health = HealthMonitor(checks: [
        "database": {
            do {
                try await store.ping()
                return nil
            } catch { return await database.healthProblem(afterPingFailed: error, logger: logger) }
        },
        "broker_publish": { publisher.isConnected ? nil : publisher.lastError },
        "broker_consume": { consumer.isConnected ? nil : consumer.lastError },
    ])
    router.get("/health") { _, _ -> Response in healthResponse(await health.report()) }
    router.get("/metrics") { _, _ -> Response in
        metricsResponse()
    }
    return router
}

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
