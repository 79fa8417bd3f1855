import AMQPClient
import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import PostgresNIO
import ServiceLifecycle
import Shared

/// The gateway's composition root: the only place that knows the concrete types.
/// It builds the real boundaries (PostgreSQL, RabbitMQ, the identity provider, the
/// learning platform) and hands them to `buildRouter`, which the Swift tests call
/// with in-memory ones. Services start in dependency order and stop in reverse: the
/// HTTP server stops accepting first, then the REST turns, the reply router and the
/// turn pipeline, then the broker connections and the database pool.
func buildApplication(settings: GatewaySettings, logger: Logger) -> some ApplicationProtocol {
    var logger = logger
    logger[metadataKey: "gateway_id"] = "\(settings.gatewayID)"
    let topology = settings.broker.topology
    let postgres = PostgresClient(configuration: settings.database.clientConfiguration, backgroundLogger: logger)
    let store = PostgresConversationStore(
        client: postgres,
        logger: logger,
        timeout: .seconds(5),
        preparedStatements: settings.database.preparedStatements
    )
    let publisher = AMQPPublisher(name: "gateway-publish", endpoints: settings.broker.endpoints, topology: topology.shared, logger: logger)
    let replies = AMQPConsumer(
        name: "gateway-replies",
        endpoints: settings.broker.endpoints,
        topology: topology.gateway(id: settings.gatewayID),
        queue: topology.gatewayQueue(gatewayID: settings.gatewayID),
        prefetch: 1000,
        logger: logger
    )
    let httpClient = HTTPClient(eventLoopGroupProvider: .singleton)
    let boundaries = GatewayBoundaries(
        store: store,
        ledger: PostgresTurnLedger(client: postgres, logger: logger, timeout: .seconds(2), preparedStatements: settings.database.preparedStatements),
        publisher: BrokerTurnPublisher(publisher: publisher, topology: topology),
        subscriptions: BrokerReplySubscriptions(consumer: replies, topology: topology),
        contexts: sessionContexts(settings, client: httpClient, postgres: postgres, logger: logger),
        directory: PostgresSessionDirectory(client: postgres, logger: logger),
        catalog: PostgresTopicCatalog(client: postgres, logger: logger),
        accounts: PostgresAccountStore(client: postgres, logger: logger),
        keys: identityProviderKeys(settings.authentication, client: httpClient, logger: logger),
        healthChecks: [
            "database": { [logger] in
                do {
                    try await store.ping()
                    return nil
                } catch { return await settings.database.healthProblem(afterPingFailed: error, logger: logger) }
            },
            "broker_publish": { publisher.isConnected ? nil : publisher.lastError },
            "broker_replies": { replies.isConnected ? nil : replies.lastError },
        ],
        whatsappInbox: PostgresWhatsAppInbox(client: postgres, logger: logger),
        graph: settings.whatsapp.cloud.map {
            HTTPWhatsAppGraph(client: httpClient, baseURL: $0.graphURL, accessToken: $0.accessToken, timeout: $0.requestTimeout)
        },
        transcriber: settings.whatsapp.cloud.flatMap { cloud in
            cloud.transcription.map { OpenAITranscriber(client: httpClient, settings: $0, timeout: cloud.requestTimeout * 4) }
        }
    )
    let routes = buildRouter(settings: settings, boundaries: boundaries, logger: logger)
    let replyRouter = ReplyRouter(
        consumer: replies,
        pipeline: routes.pipeline,
        recovery: ReplyRecovery(pipeline: routes.pipeline, store: store, logger: logger),
        logger: logger
    )
    var app = publicServer(routes, settings: settings, logger: logger)
    app.addServices(
        internalListener(settings: settings, health: routes.health, logger: logger),
        postgres,
        DatabaseStartupCheck(settings: settings.database, logger: logger),
        HTTPClientService(client: httpClient),
        publisher,
        replies,
        routes.pipeline,
        replyRouter,
        routes.restTurns
    )
    // After the turn services: it stops first, while turns and the database still serve.
    if let relay = routes.whatsappRelay { app.addServices(relay) }
    // Last: it is the first to stop taking calls at shutdown.
    if let port = settings.grpcPort {
        app.addServices(GRPCListener(host: settings.host, port: port, services: [routes.grpc], logger: logger))
    }
    return app
}

/// Where a training session's context comes from: the learning platform when
/// `PLATFORM_URL` is set, else the topic catalog in the database.
private func sessionContexts(_ settings: GatewaySettings, client: HTTPClient, postgres: PostgresClient, logger: Logger) -> any SessionContextSource {
    if let platform = settings.platform {
        PlatformContextSource(platform: HTTPLearningPlatform(client: client, settings: platform, logger: logger), logger: logger)
    } else {
        CatalogContextSource(catalog: PostgresTopicCatalog(client: postgres, logger: logger), logger: logger)
    }
}

/// The operators' listener on `GATEWAY_INTERNAL_HOST:GATEWAY_INTERNAL_PORT`: `/health`
/// with each check's detail, and `/metrics` for Prometheus. Keep it off the internet.
private func internalListener(settings: GatewaySettings, health: HealthMonitor, logger: Logger) -> some Service {
    let router = Router()
    router.add(middleware: HTTPMetricsMiddleware())
    router.get("/health") { _, _ -> Response in healthResponse(await health.report()) }
    router.get("/metrics") { _, _ in metricsResponse() }
    return Application(
        router: router,
        configuration: .init(address: .hostname(settings.internalHost, port: settings.internalPort), serverName: "parley-gateway-internal"),
        logger: logger
    )
}

/// The identity provider's key cache, when `JWT_JWKS_URL` is set.
private func identityProviderKeys(_ mode: Authenticator.Mode, client: HTTPClient, logger: Logger) -> JWKSKeyCache? {
    guard case .on(let rules) = mode, let keySet = rules.keySet else { return nil }
    return JWKSKeyCache(source: HTTPKeySetSource(client: client, url: keySet.url), policy: keySet.policy, logger: logger)
}
