import Hummingbird
import HummingbirdWebSocket
import Logging
import ServiceLifecycle
import Shared

/// What the gateway needs from outside: the database, the broker, the identity
/// provider, the learning platform. `buildApplication` passes the real ones; the
/// Swift tests pass in-memory ones to `buildRouter`.
struct GatewayBoundaries: Sendable {
    var store: any ConversationStore
    var ledger: any TurnLedger
    var publisher: any TurnPublishing
    var subscriptions: any ReplySubscriptions
    var contexts: any SessionContextSource
    /// The user's sessions and the topic catalog, for the chat page.
    var directory: any SessionDirectory
    var catalog: any TopicCatalog
    /// The chat page's accounts (used only with `ACCOUNTS=on`).
    var accounts: any AccountStore
    /// The identity provider's keys, when `JWT_JWKS_URL` is set.
    var keys: JWKSKeyCache?
    /// Named checks for `/health`: nil when fine, else what is wrong.
    var healthChecks: [String: @Sendable () async -> String?]
    /// The WhatsApp channel's messages, the Graph API and the voice notes'
    /// transcription (used only when `WHATSAPP_*` turn the channel on).
    var whatsappInbox: (any WhatsAppInbox)? = nil
    var graph: (any WhatsAppGraph)? = nil
    var transcriber: (any SpeechTranscriber)? = nil
}

/// The gateway's routes and the services they need running: `pipeline` (turns)
/// and `restTurns` (the tasks of REST and gRPC turns).
struct GatewayRoutes {
    let router: Router<GatewayRequestContext>
    /// `parley.v1.Chat`, served on `GRPC_PORT` (`GRPCListener`) over the same parts.
    let grpc: GRPCChatService
    let pipeline: TurnPipeline
    let restTurns: RESTTurnTasks
    let health: HealthMonitor
    /// Answers the WhatsApp messages the webhook stored (with the Cloud API on).
    let whatsappRelay: WhatsAppRelay?
}

/// Builds the public routes — `/health`, the chat page, the REST API, accounts, `/ws` —
/// over `boundaries`.
func buildRouter(settings: GatewaySettings, boundaries: GatewayBoundaries, logger: Logger) -> GatewayRoutes {
    let dispatcher = TurnDispatcher(publisher: boundaries.publisher, ledger: boundaries.ledger, turnLifetime: settings.turnLifetime, logger: logger)
    let pipeline = TurnPipeline(
        subscriptions: boundaries.subscriptions,
        dispatcher: dispatcher,
        maxWaitingTurns: settings.maxWaitingTurnsPerSession,
        replyTimeout: settings.replyTimeout,
        logger: logger
    )
    let registry = SessionRegistry(store: boundaries.store, contexts: boundaries.contexts, logger: logger)
    let decoder = ClientFrameDecoder(maxContentCharacters: settings.maxContentCharacters)
    let restTurns = RESTTurnTasks(maxRunning: settings.limits.maxRESTTurns)
    let limits = AbuseLimits(settings: settings.limits)
    let authenticator = Authenticator(mode: settings.authentication, keys: boundaries.keys)
    let health = HealthMonitor(checks: boundaries.healthChecks)

    let router = Router(context: GatewayRequestContext.self)
    router.add(middleware: HTTPMetricsMiddleware())
    router.add(middleware: OriginMiddleware { settings.allowsOrigin($0) })
    // The public port says only whether the gateway serves; the reasons and the
    // metrics are on the internal listener.
    router.get("/health") { _, _ -> Response in healthResponse(await health.report(), detailed: false) }
    let reader = RESTRequestReader(
        authenticator: authenticator,
        adminKeys: settings.adminKeys,
        maxBodyBytes: settings.maxFrameBytes,
        defaultWait: settings.restWait,
        maxWait: settings.replyTimeout
    )
    let waiter = TurnWaiter(pipeline: pipeline, tasks: restTurns, gatewayID: settings.gatewayID, logger: logger)
    ChatPage().register(on: router)
    RESTAPI(
        registry: registry,
        store: boundaries.store,
        directory: boundaries.directory,
        catalog: boundaries.catalog,
        turns: waiter,
        reader: reader,
        contentDecoder: decoder,
        limits: limits,
        accountsEnabled: settings.accounts != nil,
        logger: logger
    ).register(on: router)
    AccountsAPI(accounts: settings.accounts.map { accounts(boundaries.accounts, $0, logger: logger) }, reader: reader).register(on: router)
    let connections = ConnectionHandler(
        pipeline: pipeline,
        store: boundaries.store,
        registry: registry,
        decoder: decoder,
        gatewayID: settings.gatewayID,
        maxFrameBytes: settings.maxFrameBytes,
        outboxCapacity: settings.outboxCapacity,
        maxSessionsPerSocket: settings.maxSessionsPerSocket,
        limits: limits,
        logger: logger
    )
    WebSocketEndpoint(settings: settings, authenticator: authenticator, limits: limits, connections: connections).register(on: router)
    let grpc = GRPCChatService(
        registry: registry,
        store: boundaries.store,
        turns: waiter,
        pipeline: pipeline,
        authenticator: authenticator,
        contentDecoder: decoder,
        limits: limits,
        logger: logger
    )
    let relay = whatsApp(
        on: router,
        settings: settings,
        boundaries: boundaries,
        reader: reader,
        waiter: waiter,
        registry: registry,
        limits: limits,
        logger: logger
    )
    return GatewayRoutes(router: router, grpc: grpc, pipeline: pipeline, restTurns: restTurns, health: health, whatsappRelay: relay)
}

/// The WhatsApp channel's routes, as its settings turn them on, and the relay that
/// answers the webhook's messages.
private func whatsApp(
    on router: Router<GatewayRequestContext>,
    settings: GatewaySettings,
    boundaries: GatewayBoundaries,
    reader: RESTRequestReader,
    waiter: TurnWaiter,
    registry: SessionRegistry,
    limits: AbuseLimits,
    logger: Logger
) -> WhatsAppRelay? {
    let decoder = ClientFrameDecoder(maxContentCharacters: settings.maxContentCharacters)
    let sessions = ChatterSessions(directory: boundaries.directory, registry: registry, idle: settings.whatsapp.sessionIdle, logger: logger)
    if !settings.whatsapp.botKeys.isEmpty {
        BotAPI(
            keys: settings.whatsapp.botKeys,
            sessions: sessions,
            turns: waiter,
            reader: reader,
            contentDecoder: decoder,
            limits: limits,
            standings: boundaries.whatsappInbox,
            logger: logger
        )
        .register(on: router)
    }
    guard let cloud = settings.whatsapp.cloud, let inbox = boundaries.whatsappInbox, let graph = boundaries.graph else { return nil }
    ParleyMetrics.registerWhatsAppSeries()
    WhatsAppWebhook(settings: cloud, inbox: inbox, logger: logger).register(on: router)
    return WhatsAppRelay(
        inbox: inbox,
        graph: graph,
        transcriber: boundaries.transcriber,
        sessions: sessions,
        turns: waiter,
        contentDecoder: decoder,
        settings: cloud,
        logger: logger
    )
}

/// The chat page's accounts over `store`, as `settings` say.
private func accounts(_ store: any AccountStore, _ settings: AccountSettings, logger: Logger) -> Accounts {
    Accounts(
        store: store,
        hasher: PasswordHasher(cost: settings.passwordCost),
        issuer: AccountTokenIssuer(key: settings.key, claims: settings.claims, lifetime: settings.tokenLifetime),
        attemptsPerAddress: RateLimiter(settings.attemptsPerAddress),
        loginsPerAccount: RateLimiter(settings.loginsPerAccount),
        logger: logger
    )
}

/// The public server for `routes`: HTTP/1.1 with the WebSocket upgrade.
func publicServer(
    _ routes: GatewayRoutes,
    settings: GatewaySettings,
    logger: Logger
) -> Application<RouterResponder<GatewayRequestContext>> {
    Application(
        router: routes.router,
        server: .http1WebSocketUpgrade(
            webSocketRouter: routes.router,
            // A text frame that is not UTF-8 closes the socket with 1007 (RFC 6455 §8.1):
            // decoded leniently, its bytes would become U+FFFD and be stored as a message
            // the client never wrote.
            configuration: .init(ws: .init(maxFrameSize: settings.maxFrameBytes, autoPing: .enabled(timePeriod: .seconds(30)), validateUTF8: true))
        ),
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "parley-gateway"),
        logger: logger
    )
}
