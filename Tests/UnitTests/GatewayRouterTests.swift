import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import Logging
import ParleyTestSupport
import Testing

@testable import Gateway
@testable import Shared

/// The gateway's public routes as `buildApplication` builds them — the same
/// `buildRouter` — over in-memory boundaries: the store, the ledger, a broker and a
/// stand-in worker. REST through the router, `/ws` through a live server.
@Suite("Gateway routes", .timeLimit(.minutes(1)))
struct GatewayRouterTests {
    let logger = Logger(label: "test")

    struct Harness {
        let app: Application<RouterResponder<GatewayRequestContext>>
        let routes: GatewayRoutes
        let broker: InMemoryBroker
        let store: InMemoryConversationStore
    }

    /// The gateway's app on in-memory parts, its pipeline and a worker running.
    func withGateway(_ environment: [String: String] = [:], _ body: (Harness) async throws -> Void) async throws {
        // HummingbirdWSClient sends `Origin: ws://localhost`.
        var variables = ["PARLEY_AUTH": "off", "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": "0", "ALLOWED_ORIGINS": "ws://localhost"]
        variables.merge(environment) { $1 }
        var settings = try GatewaySettings(environment: EnvironmentReader(variables))
        settings.accounts?.passwordCost = AccountsTests.cheap
        let (store, broker) = (InMemoryConversationStore(), InMemoryBroker())
        let boundaries = GatewayBoundaries(
            store: store,
            ledger: InMemoryTurnLedger(),
            publisher: broker,
            subscriptions: broker,
            contexts: CatalogContextSource(catalog: InMemoryTopicCatalog([]), logger: logger),
            directory: store,
            catalog: InMemoryTopicCatalog([]),
            accounts: InMemoryAccountStore(sessions: store),
            keys: nil,
            healthChecks: ["database": { nil }],
            whatsappInbox: InMemoryWhatsAppInbox(),
            graph: FakeGraph()
        )
        let routes = buildRouter(settings: settings, boundaries: boundaries, logger: logger)
        var app = publicServer(routes, settings: settings, logger: logger)
        app.addServices(routes.pipeline, routes.restTurns)
        let worker = EchoWorker(broker: broker, store: store, pipeline: routes.pipeline)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await worker.run() }
            defer { group.cancelAll() }
            try await body(Harness(app: app, routes: routes, broker: broker, store: store))
        }
    }

    func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any]) ?? [:]
    }

    @Test func aRESTSessionIsStartedAnsweredAndRead() async throws {
        let (anaKey, biaKey) = ("ana-key-0123456789abcdef", "bia-key-0123456789abcdef")
        try await withGateway(["PARLEY_AUTH": "on", "API_KEYS": "\(anaKey):ana,\(biaKey):bia"]) { gateway in
            try await gateway.app.test(.router) { client in
                let started = try await client.execute(uri: "/api/sessions/start?token=\(anaKey)", method: .post)
                #expect(started.status == .created, "\(String(buffer: started.body))")
                let session = try #require((json(started.body)["session"] as? [String: Any])?["session_id"] as? String)
                #expect((json(started.body)["message"] as? [String: Any])?["content"] as? String == "Olá! Vamos começar?")

                let sent = try await client.execute(
                    uri: "/api/sessions/\(session)/message?token=\(anaKey)",
                    method: .post,
                    body: ByteBuffer(string: #"{"content":"oi"}"#)
                )
                #expect(sent.status == .ok)
                #expect((json(sent.body)["message"] as? [String: Any])?["content"] as? String == "eco: oi")

                let history = try await client.execute(uri: "/api/sessions/\(session)?token=\(anaKey)", method: .get)
                let contents = (json(history.body)["messages"] as? [[String: Any]])?.compactMap { $0["content"] as? String }
                #expect(contents == ["Olá! Vamos começar?", "oi", "eco: oi"])

                let other = try await client.execute(uri: "/api/sessions/\(session)?token=\(biaKey)", method: .get)
                #expect(other.status == .forbidden)
                #expect((json(other.body)["error"] as? [String: Any])?["code"] as? String == "forbidden")
            }
            // The listener of each REST turn left; the session is unbound again.
            #expect(gateway.broker.bound.withLock { $0.isEmpty })
        }
    }

    @Test(arguments: [
        ("/api/sessions/start?user=ana", HTTPRequest.Method.post, #"{"topicId":7001}"#, HTTPResponse.Status.badRequest, "malformed_request"),
        ("/api/sessions/9b2f6d1e-4c7a-4f0e-8d3b-2a61c5e8f013/message?user=ana", .post, #"{"content":"oi"}"#, .notFound, "session_not_found"),
        ("/api/sessions/not-a-uuid?user=ana", .get, "", .badRequest, "malformed_request"),
        ("/ws?user=ana", .get, "", .upgradeRequired, "upgrade_required"),
    ])
    func badRequestsGetTheirCode(uri: String, method: HTTPRequest.Method, body: String, status: HTTPResponse.Status, code: String) async throws {
        try await withGateway { gateway in
            try await gateway.app.test(.router) { client in
                let response = try await client.execute(uri: uri, method: method, body: body.isEmpty ? nil : ByteBuffer(string: body))
                #expect(response.status == status)
                #expect((json(response.body)["error"] as? [String: Any])?["code"] as? String == code)
            }
        }
    }

    @Test func thePublicHealthSaysOnlyWhetherTheGatewayServes() async throws {
        try await withGateway { gateway in
            try await gateway.app.test(.router) { client in
                let health = try await client.execute(uri: "/health", method: .get)
                #expect(health.status == .ok && json(health.body).keys.sorted() == ["status"])
                #expect(try await client.execute(uri: "/metrics", method: .get).status == .notFound)
            }
        }
    }

    /// The document served is the repository's file, and it describes exactly the
    /// routes the router has (the WebSocket, which OpenAPI cannot describe, aside).
    @Test func theOpenAPIDocumentIsTheFileAndMatchesTheRoutes() async throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "../../Sources/Gateway/Assets/openapi.json")
        let fileData = try Data(contentsOf: file)
        let document = try #require(try JSONSerialization.jsonObject(with: fileData) as? [String: Any])
        // Every channel on, so that every route is there.
        let whatsApp = [
            "WHATSAPP_APP_SECRET": "s", "WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_ACCESS_TOKEN": "t", "WHATSAPP_API_KEYS": "bot-key-0123456789abcdef",
        ]
        try await withGateway(whatsApp) { gateway in
            try await gateway.app.test(.router) { client in
                let served = try await client.execute(uri: "/openapi.json", method: .get)
                #expect(served.headers[.contentType] == "application/json")
                let fromFile = try #require(try JSONSerialization.jsonObject(with: fileData) as? [String: Any])
                #expect(NSDictionary(dictionary: json(served.body)).isEqual(to: fromFile))
                let docs = try await client.execute(uri: "/docs", method: .get)
                #expect(String(buffer: docs.body).contains("/openapi.json"))
            }
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            let documented = Set(
                paths.flatMap { path, operations in
                    operations.keys.filter { ["get", "post", "put", "patch", "delete"].contains($0) }.map { "\($0.uppercased()) \(path)" }
                }
            )
            let routed = Set(
                gateway.routes.router.routes.map { "\($0.method.rawValue) \($0.path)" }
            ).subtracting(["GET /ws"])
            #expect(
                routed == documented,
                "routed but not documented: \(routed.subtracting(documented)); documented but not routed: \(documented.subtracting(routed))"
            )
        }
    }

    @Test func aWebSocketClientTypesAndIsAnswered() async throws {
        try await withGateway { gateway in
            try await gateway.app.test(.live) { client in
                let frames = FrameLog()
                try await client.ws("/ws?user=ana") { inbound, outbound, _ in
                    try await outbound.write(.text("olá"))
                    for try await message in inbound.messages(maxSize: 1 << 16) {
                        guard case .text(let text) = message else { continue }
                        let type = frames.append(text)
                        if type == "reply" { break }
                    }
                }
                #expect(frames.types == ["session", "accepted", "delta", "delta", "reply"], "\(frames.last)")
                #expect(frames.last["message"].flatMap { ($0 as? [String: Any])?["content"] as? String } == "eco: olá")
            }
            try await eventually { gateway.broker.bound.withLock { $0.isEmpty } ? true : nil }
        }
    }

    @Test func theChatPageIsServedWithAPolicyThatAllowsOnlyThisGateway() async throws {
        try await withGateway { gateway in
            try await gateway.app.test(.router) { client in
                for (path, type, marker) in [
                    ("/", "text/html; charset=utf-8", "<script src=\"/chat.js\" defer></script>"),
                    ("/chat.js", "text/javascript; charset=utf-8", "\"use strict\";"),
                    ("/chat.css", "text/css; charset=utf-8", ".messages"),
                ] {
                    let response = try await client.execute(uri: path, method: .get)
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == type)
                    #expect(response.headers[.contentSecurityPolicy] == ChatPage.contentSecurityPolicy)
                    for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"] {
                        #expect(ChatPage.contentSecurityPolicy.contains(directive))
                    }
                    #expect(!ChatPage.contentSecurityPolicy.contains("unsafe"))
                    #expect(response.headers[.xContentTypeOptions] == "nosniff")
                    #expect(String(buffer: response.body).contains(marker), "\(path)")
                }
                // Nothing is loaded from elsewhere: no http(s) URL in the page or its files.
                for path in ["/", "/chat.js", "/chat.css"] {
                    let text = String(buffer: try await client.execute(uri: path, method: .get).body)
                    #expect(!text.contains("http://") && !text.contains("https://"), "\(path)")
                }
            }
        }
    }

    @Test func thePageLearnsHowToSignInAndListsTheUsersSessionsAndTopics() async throws {
        try await withGateway { gateway in
            try await gateway.app.test(.router) { client in
                let options = try await client.execute(uri: "/api/auth", method: .get)
                #expect(json(options.body) as NSDictionary == ["authentication": "off", "accounts": false] as NSDictionary)
                for _ in 0..<3 { _ = try await client.execute(uri: "/api/sessions/start?user=ana", method: .post) }
                _ = try await client.execute(uri: "/api/sessions/start?user=bia", method: .post)
                let first = try await client.execute(uri: "/api/sessions?user=ana&limit=2", method: .get)
                let page = json(first.body)
                #expect((page["sessions"] as? [[String: Any]])?.count == 2)
                let cursor = try #require(page["next_cursor"] as? String)
                let second = json(try await client.execute(uri: "/api/sessions?user=ana&limit=2&cursor=\(cursor)", method: .get).body)
                #expect((second["sessions"] as? [[String: Any]])?.count == 1)
                #expect(second["next_cursor"] is NSNull)
                let keys = ((second["sessions"] as? [[String: Any]])?.first?.keys.sorted()) ?? []
                #expect(keys == ["course_id", "first_message", "last_activity_at", "session_id", "started_at", "status", "topic_id", "topic_title"])
                let bad = try await client.execute(uri: "/api/sessions?user=ana&cursor=42", method: .get)
                #expect(bad.status == .badRequest)
                let topics = json(try await client.execute(uri: "/api/topics?user=ana", method: .get).body)
                #expect((topics["topics"] as? [Any])?.isEmpty == true)
            }
        }
    }

    @Test func accountsAreOffUnlessTurnedOnAndThenRegisterAndLogIn() async throws {
        try await withGateway { gateway in
            try await gateway.app.test(.router) { client in
                let off = try await client.execute(
                    uri: "/api/accounts",
                    method: .post,
                    body: ByteBuffer(string: #"{"user_id":"ana","password":"correct horse"}"#)
                )
                #expect(off.status == .notFound)
                #expect((json(off.body)["error"] as? [String: Any])?["code"] as? String == "accounts_disabled")
            }
        }
        let secret = String(repeating: "s", count: 32)
        try await withGateway(["PARLEY_AUTH": "on", "JWT_SECRET": secret, "ACCOUNTS": "on"]) { gateway in
            try await gateway.app.test(.router) { client in
                #expect(json(try await client.execute(uri: "/api/auth", method: .get).body)["accounts"] as? Bool == true)
                let credentials = ByteBuffer(string: #"{"user_id":"Ana","password":"correct horse"}"#)
                let registered = try await client.execute(uri: "/api/accounts", method: .post, body: credentials)
                #expect(registered.status == .created, "\(String(buffer: registered.body))")
                #expect(json(registered.body)["user_id"] as? String == "account:ana")
                let again = try await client.execute(uri: "/api/accounts", method: .post, body: credentials)
                #expect(again.status == .conflict)
                let wrong = try await client.execute(
                    uri: "/api/accounts/login",
                    method: .post,
                    body: ByteBuffer(string: #"{"user_id":"ana","password":"wrong horse"}"#)
                )
                #expect(wrong.status == .unauthorized && (json(wrong.body)["error"] as? [String: Any])?["code"] as? String == "invalid_credentials")
                let loggedIn = try await client.execute(uri: "/api/accounts/login", method: .post, body: credentials)
                let token = try #require(json(loggedIn.body)["token"] as? String)
                // The token is the gateway's own: it opens the user's sessions.
                let started = try await client.execute(uri: "/api/sessions/start", method: .post, headers: [.authorization: "Bearer \(token)"])
                #expect(started.status == .created)
                let listed = json(try await client.execute(uri: "/api/sessions", method: .get, headers: [.authorization: "Bearer \(token)"]).body)
                #expect((listed["sessions"] as? [Any])?.count == 1)
                let extra = try await client.execute(
                    uri: "/api/accounts/login",
                    method: .post,
                    body: ByteBuffer(string: #"{"user_id":"ana","password":"correct horse","remember":true}"#)
                )
                #expect(extra.status == .badRequest)
            }
        }
    }

    // The refusals at the handshake (origin, token, sockets) end in a close the server
    // starts; HummingbirdWSClient waiting on that close can outlast a busy test run, so
    // they are tested end to end (Tests/e2e/test_limits.py, test_errors.py).
}

/// The frames a test's WebSocket client read.
final class FrameLog: @unchecked Sendable {
    private var frames: [[String: Any]] = []
    private let lock = NSLock()

    /// Adds a frame; returns its type.
    func append(_ text: String) -> String? {
        let frame = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
        lock.withLock { frames.append(frame) }
        return frame["type"] as? String
    }

    var types: [String] { lock.withLock { frames.compactMap { $0["type"] as? String } } }
    var last: [String: Any] { lock.withLock { frames.last ?? [:] } }
}
