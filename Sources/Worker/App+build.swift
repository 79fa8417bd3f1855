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
    let store = PostgresConversationStore(client: postgres, logger: logger, preparedStatements: settings.database.preparedStatements)
    let broker = WorkerBroker(settings: settings, logger: logger)
    let httpClient = providerHTTPClient(concurrency: settings.concurrency)
    let cancellations = TurnCancellations()
    let schemaReady = Gate()
    let processor = turnProcessor(
        settings: settings,
        parts: .init(
            store: store,
            ledger: PostgresTurnLedger(client: postgres, logger: logger, preparedStatements: settings.database.preparedStatements),
            opener: PostgresTurnOpener(client: postgres, logger: logger, preparedStatements: settings.database.preparedStatements),
            broker: broker,
            httpClient: httpClient
        ),
        cancellations: cancellations,
        startAfter: schemaReady,
        logger: logger
    )
    let http = Application(
        router: workerRouter(store: store, database: settings.database, broker: broker, logger: logger),
        configuration: .init(address: .hostname(settings.httpHost, port: settings.httpPort), serverName: "parley-worker"),
        logger: logger
    )
    let migrations = MigrationService(
        client: postgres,
        catalog: settings.topics.map { (PostgresTopicCatalog(client: postgres, logger: logger), $0) },
        done: schemaReady,
        logger: logger
    )
    let database: [ServiceGroupConfiguration.ServiceConfiguration] = [
        .init(service: postgres),
        .init(service: DatabaseStartupCheck(settings: settings.database, logger: logger)),
        .init(service: migrations, successTerminationBehavior: .ignore),
        .init(service: HTTPClientService(client: httpClient)),
    ]
    let outbox = outboxServices(settings: settings, postgres: postgres, httpClient: httpClient, startAfter: schemaReady, logger: logger)
    var configuration = ServiceGroupConfiguration(
        services: database + outbox + [
            .init(service: broker.publisher),
            .init(service: broker.turns),
            .init(service: broker.control),
            .init(service: ControlListener(consumer: broker.control, cancellations: cancellations, logger: logger)),
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

/// The HTTP client of the providers (and the learning platform). A worker mostly
/// waits on the model, so every turn in flight gets a connection of its own rather
/// than a place in the pool's queue: the pool's limit per host follows
/// `WORKER_CONCURRENCY` (AsyncHTTPClient's default is 8). HTTP/1 only: over HTTP/2
/// AsyncHTTPClient keeps one connection per event loop and queues the requests past
/// the server's stream limit (often 100) until they fail as pool timeouts, so 256
/// turns in flight would not fit (docs/decisions.md).
func providerHTTPClient(concurrency: Int, connectTimeout: Duration = .seconds(10)) -> HTTPClient {
    var configuration = HTTPClient.Configuration()
    configuration.httpVersion = .http1Only
    // Also how long a request may wait for a pooled connection.
    configuration.timeout.connect = .nanoseconds(Int64(connectTimeout.wholeMilliseconds) * 1_000_000)
    configuration.connectionPool = .init(
        idleTimeout: .seconds(60),
        concurrentHTTP1ConnectionsPerHostSoftLimit: providerConnectionsPerHost(concurrency: concurrency)
    )
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}

/// Connections per provider host: one for each turn in flight, and a few spare.
func providerConnectionsPerHost(concurrency: Int) -> Int { max(8, concurrency + 8) }

/// A worker's three broker connections: replies out, turns in (as many at once as
/// `WORKER_CONCURRENCY`), and the control signals (cancels) of this worker's queue.
struct WorkerBroker {
    let publisher: AMQPPublisher
    let turns: AMQPConsumer
    let control: AMQPConsumer
    let topology: ParleyTopology

    init(settings: WorkerSettings, logger: Logger) {
        topology = settings.broker.topology
        publisher = AMQPPublisher(name: "worker-publish", endpoints: settings.broker.endpoints, topology: topology.shared, logger: logger)
        turns = AMQPConsumer(
            name: "worker-consume",
            endpoints: settings.broker.endpoints,
            topology: topology.shared,
            queue: topology.turnsQueue,
            prefetch: UInt16(settings.concurrency),
            logger: logger
        )
        control = AMQPConsumer(
            name: "worker-control",
            endpoints: settings.broker.endpoints,
            topology: topology.worker(id: settings.workerID),
            queue: topology.controlQueue(workerID: settings.workerID),
            prefetch: 100,
            logger: logger
        )
    }
}

/// What the turn processor is built from.
struct TurnProcessorParts {
    let store: any ConversationStore
    let ledger: any TurnLedger
    let opener: any TurnOpener
    let broker: WorkerBroker
    let httpClient: HTTPClient
}

/// Consumes turns and answers them: the handler (store, ledger, the provider chain,
/// prompts) behind the processor (deliveries, replies, outages).
func turnProcessor(
    settings: WorkerSettings,
    parts: TurnProcessorParts,
    cancellations: TurnCancellations,
    startAfter schemaReady: Gate,
    logger: Logger
) -> TurnProcessor {
    var handler = TurnHandler(
        store: parts.store,
        holding: TurnHolding(ledger: parts.ledger),
        generator: providerChain(settings: settings, httpClient: parts.httpClient, logger: logger),
        prompts: PromptBuilder(
            systemPrompt: settings.systemPrompt,
            maxHistory: settings.maxConversationHistory,
            completionMarker: settings.completionMarker
        ),
        cancellations: cancellations,
        opener: parts.opener
    )
    handler.completionMarker = settings.completionMarker
    var processor = TurnProcessor(
        consumer: parts.broker.turns,
        publisher: parts.broker.publisher,
        handler: handler,
        topology: parts.broker.topology,
        retryPause: settings.retryPause,
        startAfter: schemaReady,
        logger: logger
    )
    processor.coalescer = settings.coalescer
    processor.deltaBudget = DeltaBudget(perSecond: settings.deltasPerSecond)
    return processor
}

/// The completion outbox's backlog gauge, and its sender when a learning platform
/// is configured (`PLATFORM_URL`).
func outboxServices(
    settings: WorkerSettings,
    postgres: PostgresClient,
    httpClient: HTTPClient,
    startAfter schemaReady: Gate,
    logger: Logger
) -> [ServiceGroupConfiguration.ServiceConfiguration] {
    let outbox = PostgresCompletionOutbox(client: postgres, logger: logger)
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
        .init(service: OutboxBacklogSampler(outbox: outbox, startAfter: schemaReady, logger: logger))
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
    return services
}

/// The providers of `LLM_PROVIDER` and `LLM_FALLBACK`, in order, each behind its own
/// circuit breaker, sharing one retry policy and one HTTP client.
func providerChain(settings: WorkerSettings, httpClient: HTTPClient, logger: Logger) -> ProviderChain {
    let models: [any ChatModel] = settings.providers.compactMap { provider in
        // One for each provider: each counts the requests to its own host.
        var transport = LLMTransport(httpClient: httpClient, attemptTimeout: settings.attemptTimeout, idleTimeout: settings.idleTimeout)
        transport.connectionsPerHost = providerConnectionsPerHost(concurrency: settings.concurrency)
        return switch provider {
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
    broker: WorkerBroker,
    logger: Logger
) -> Router<BasicRequestContext> {
    let (publisher, consumer) = (broker.publisher, broker.turns)
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
