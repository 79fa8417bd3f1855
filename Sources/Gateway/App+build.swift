import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import PostgresNIO
import ServiceLifecycle
import Shared

/// The gateway's composition root: the only place that knows the concrete types.
/// Tests call it too. Services start in dependency order and stop in reverse: the
/// HTTP server stops accepting first, then the reply router, then the broker
/// connections and the database pool.
func buildApplication(settings: GatewaySettings, logger: Logger) -> some ApplicationProtocol {
    var logger = logger
    logger[metadataKey: "gateway_id"] = "\(settings.gatewayID)"
    let topology = settings.broker.topology
    let postgres = PostgresClient(configuration: settings.database.clientConfiguration, backgroundLogger: logger)
    let store = PostgresConversationStore(client: postgres, logger: logger, timeout: .seconds(5))
    let publisher = AMQPPublisher(
        name: "gateway-publish", endpoint: settings.broker.endpoint, topology: topology.shared, logger: logger
    )
    let replies = AMQPConsumer(
        name: "gateway-replies", endpoint: settings.broker.endpoint, topology: topology.gateway(id: settings.gatewayID),
        queue: topology.gatewayQueue(gatewayID: settings.gatewayID), prefetch: 1000, logger: logger
    )
    let dispatcher = TurnDispatcher(
        publisher: BrokerTurnPublisher(publisher: publisher, topology: topology),
        ledger: PostgresTurnLedger(client: postgres, logger: logger, timeout: .seconds(2)), turnLifetime: settings.turnLifetime, logger: logger
    )
    let pipeline = TurnPipeline(
        subscriptions: BrokerReplySubscriptions(consumer: replies, topology: topology), dispatcher: dispatcher,
        maxWaitingTurns: settings.maxWaitingTurnsPerSession, replyTimeout: settings.replyTimeout, logger: logger
    )
    let httpClient = HTTPClient(eventLoopGroupProvider: .singleton)
    let contexts: any SessionContextSource =
        if let platform = settings.platform {
            PlatformContextSource(platform: HTTPLearningPlatform(client: httpClient, settings: platform, logger: logger), logger: logger)
        } else {
            CatalogContextSource(catalog: PostgresTopicCatalog(client: postgres, logger: logger), logger: logger)
        }
    let registry = SessionRegistry(store: store, contexts: contexts, logger: logger)
    let decoder = ClientFrameDecoder(maxContentCharacters: settings.maxContentCharacters)
    let restTurns = RESTTurnTasks(maxRunning: settings.limits.maxRESTTurns)
    let limits = AbuseLimits(settings: settings.limits)
    let connections = ConnectionHandler(
        pipeline: pipeline, store: store, registry: registry, decoder: decoder,
        gatewayID: settings.gatewayID, maxFrameBytes: settings.maxFrameBytes, outboxCapacity: settings.outboxCapacity,
        maxSessionsPerSocket: settings.maxSessionsPerSocket, limits: limits, logger: logger
    )
    let authenticator = Authenticator(mode: settings.authentication, keys: identityProviderKeys(settings.authentication, client: httpClient, logger: logger))
    let rest = RESTAPI(
        registry: registry, store: store, turns: TurnWaiter(pipeline: pipeline, tasks: restTurns, gatewayID: settings.gatewayID, logger: logger),
        reader: RESTRequestReader(
            authenticator: authenticator, adminKeys: settings.adminKeys, maxBodyBytes: settings.maxFrameBytes, defaultWait: settings.restWait,
            maxWait: settings.replyTimeout
        ),
        contentDecoder: decoder, limits: limits, logger: logger
    )

    let health = HealthMonitor(checks: [
        "database": { [logger] in
            do { try await store.ping(); return nil } catch { return await settings.database.healthProblem(afterPingFailed: error, logger: logger) }
        },
        "broker_publish": { publisher.isConnected ? nil : publisher.lastError },
        "broker_replies": { replies.isConnected ? nil : replies.lastError },
    ])
    let router = Router(context: GatewayRequestContext.self)
    router.add(middleware: HTTPMetricsMiddleware())
    router.add(middleware: OriginMiddleware { settings.allowsOrigin($0) })
    // The public port says only whether the gateway serves; the reasons and the
    // metrics are on the internal listener.
    router.get("/health") { _, _ -> Response in healthResponse(await health.report(), detailed: false) }
    rest.register(on: router)
    // The token is checked after the upgrade: HummingbirdWebSocket cannot answer a
    // refused upgrade with a status and body of ours (and a browser could not read
    // them), so a bad token gets an error frame and close code 1008 instead. A plain
    // GET without the upgrade gets the same error as HTTP 401.
    router.ws("/ws") { request, _ in
        guard request.headers[.upgrade]?.lowercased() == "websocket" else {
            _ = try await authenticate(request, with: authenticator)
            throw GatewayHTTPError(status: .upgradeRequired, code: "upgrade_required", message: "GET /ws must be a WebSocket upgrade")
        }
        return .upgrade([:])
    } onUpgrade: { inbound, outbound, context in
        // A browser page of another site (ALLOWED_ORIGINS).
        guard settings.allowsOrigin(context.request.headers[.origin]) else {
            let message = "this gateway does not take sockets from pages of \(context.request.headers[.origin] ?? "?") (ALLOWED_ORIGINS)"
            try await outbound.write(.text(ServerFrame.error(code: "origin_not_allowed", message: message).text))
            try await outbound.close(.policyViolation, reason: "origin_not_allowed")
            return
        }
        // New sockets per client address. Refused after the upgrade, like a bad token:
        // HummingbirdWebSocket answers a refused upgrade with a plain 400 of its own.
        if let wait = limits.socketsPerAddress.take(context.requestContext.clientAddress) {
            let refusal = GatewayHTTPError(rateLimited: "too many new connections from your address", retryAfter: wait)
            let frame = ServerFrame.error(code: refusal.code, message: refusal.message, context: .init(retryAfter: refusal.retryAfter))
            try await outbound.write(.text(frame.text))
            try await outbound.close(.unknown(1013), reason: refusal.code)
            return
        }
        let userID: String
        do throws(GatewayHTTPError) {
            userID = try await authenticate(context.request, with: authenticator)
        } catch {
            try await outbound.write(.text(ServerFrame.error(code: error.code, message: error.message).text))
            // A token refused is a policy violation; keys that cannot be fetched, "try again later".
            try await outbound.close(error.status == .serviceUnavailable ? .unknown(1013) : .policyViolation, reason: error.code)
            return
        }
        if let refusal = limits.sockets.admit(userID) {
            let message = switch refusal {
            case .gatewayFull(let limit): "this gateway holds its most sockets (\(limit)); try again later or another gateway"
            case .userFull(let limit): "you have \(limit) sockets open, the most a user may; close one"
            }
            try await outbound.write(.text(ServerFrame.error(code: "too_many_sockets", message: message).text))
            try await outbound.close(.unknown(1013), reason: "too_many_sockets")
            return
        }
        defer { limits.sockets.leave(userID) }
        try await connections.serve(inbound: inbound, outbound: outbound, userID: userID)
    }

    var app = Application(
        router: router,
        server: .http1WebSocketUpgrade(
            webSocketRouter: router,
            // A text frame that is not UTF-8 closes the socket with 1007 (RFC 6455 §8.1):
            // decoded leniently, its bytes would become U+FFFD and be stored as a message
            // the client never wrote.
            configuration: .init(ws: .init(maxFrameSize: settings.maxFrameBytes, autoPing: .enabled(timePeriod: .seconds(30)), validateUTF8: true))
        ),
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "parley-gateway"),
        logger: logger
    )
    app.addServices(internalListener(settings: settings, health: health, logger: logger))
    // The pipeline stops after the router and the REST turns, and before the broker
    // connections it publishes and binds through.
    let replyRouter = ReplyRouter(consumer: replies, pipeline: pipeline, recovery: ReplyRecovery(pipeline: pipeline, store: store, logger: logger), logger: logger)
    app.addServices(
        postgres, DatabaseStartupCheck(settings: settings.database, logger: logger), HTTPClientService(client: httpClient), publisher, replies,
        pipeline, replyRouter, restTurns
    )
    return app
}

private func authenticate(_ request: Request, with authenticator: Authenticator) async throws(GatewayHTTPError) -> String {
    let token = Authenticator.token(authorization: request.headers[.authorization], query: request.uri.query)
    do {
        return try await authenticator.userID(token: token, requestedUser: Authenticator.queryValue("user", in: request.uri.query))
    } catch {
        throw GatewayHTTPError(error)
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
