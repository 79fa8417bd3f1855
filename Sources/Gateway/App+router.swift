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
    return GatewayRoutes(router: router, grpc: grpc, pipeline: pipeline, restTurns: restTurns, health: health)
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
