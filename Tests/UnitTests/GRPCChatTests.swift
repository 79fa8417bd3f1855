import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ParleyGRPC
import Testing

@testable import Gateway
@testable import Shared

/// `parley.v1.Chat` through a real HTTP/2 connection (grpc-swift's client over NIO) to
/// the gateway's gRPC listener, over the same in-memory boundaries as the routes'
/// tests. A Parley refusal is the gRPC status its code means, with the code itself in
/// `parley-error-code`.
extension GatewayRouterTests {
    /// The gateway with its gRPC listener on a free port, and a client for it.
    func withChat(
        _ environment: [String: String] = [:],
        _ body: @escaping @Sendable (Parley_V1_Chat.Client<HTTP2ClientTransport.Posix>, InMemoryBroker) async throws -> Void
    ) async throws {
        try await withGateway(environment) { gateway in
            let listener = GRPCListener(host: "127.0.0.1", port: 0, services: [gateway.routes.grpc], logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await listener.server.serve() }
                defer {
                    listener.server.beginGracefulShutdown()
                    group.cancelAll()
                }
                let port = try #require(await listener.port)
                let broker = gateway.broker
                try await gateway.app.test(.live) { _ in
                    try await withGRPCClient(
                        transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
                    ) { client in
                        try await body(Parley_V1_Chat.Client(wrapping: client), broker)
                    }
                }
            }
        }
    }

    struct Refusal: Equatable {
        var status: RPCError.Code
        var code: String?
    }

    /// The status and Parley code a call failed with (nil: it did not fail with a status).
    func refusal(_ call: () async throws -> Void) async -> Refusal? {
        do {
            try await call()
            return nil
        } catch let error as RPCError {
            return Refusal(status: error.code, code: error.metadata[stringValues: RPCError.parleyCodeKey].first(where: { _ in true }))
        } catch {
            return nil
        }
    }

    @Test func aGRPCClientStartsASessionStreamsAnAnswerAndReadsTheHistory() async throws {
        try await withChat { chat, broker in
            let ana: Metadata = [GRPCChatService.userKey: "ana"]
            let started = try await chat.startSession(.init(), metadata: ana)
            #expect(started.opening.content == "Olá! Vamos começar?" && started.opening.role == "assistant")
            #expect(started.session.status == "active" && started.session.topicID == 0)
            let sessionID = started.session.sessionID

            let events = try await chat.sendMessage(
                .with {
                    $0.sessionID = sessionID
                    $0.content = "oi"
                    $0.clientMsgID = "c1"
                },
                metadata: ana
            ) { response in
                try await response.messages.reduce(into: [Parley_V1_SendMessageEvent]()) { $0.append($1) }
            }
            // accepted, the deltas as the worker wrote them, then the whole reply.
            #expect(events.first?.accepted.clientMsgID == "c1")
            #expect(events.dropFirst().dropLast().map(\.delta.text).joined() == "eco: oi")
            let reply = try #require(events.last?.reply)
            #expect(reply.message.content == "eco: oi" && reply.turnID == events.first?.accepted.turnID)

            let history = try await chat.getHistory(.with { $0.sessionID = sessionID }, metadata: ana)
            #expect(history.messages.map(\.content) == ["Olá! Vamos começar?", "oi", "eco: oi"])
            #expect(!history.more)
            let page = try await chat.getHistory(
                .with {
                    $0.sessionID = sessionID
                    $0.afterID = history.messages[0].id
                    $0.limit = 1
                },
                metadata: ana
            )
            #expect(page.messages.map(\.content) == ["oi"] && page.more)

            // A cancel names a turn of the session; one this gateway does not hold (sent
            // through another) is signalled to the workers all the same.
            let elsewhere = UUID()
            _ = try await chat.cancel(
                .with {
                    $0.sessionID = sessionID
                    $0.turnID = elsewhere.uuidString
                },
                metadata: ana
            )
            #expect(broker.cancelled.withLock { $0 } == [elsewhere])

            let answer = try await chat.askQuestion(
                .with {
                    $0.lessonContext = "Frações"
                    $0.question = "o que é um denominador?"
                },
                metadata: ana
            )
            #expect(answer.answer == "eco: Lesson context:\nFrações\n\nQuestion: o que é um denominador?")
            #expect(answer.sessionID != sessionID)
        }
    }

    @Test func refusalsAreTheStatusOfTheirCode() async throws {
        try await withChat { chat, _ in
            let ana: Metadata = [GRPCChatService.userKey: "ana"]
            let bia: Metadata = [GRPCChatService.userKey: "bia"]
            let sessionID = try await chat.startSession(.init(), metadata: ana).session.sessionID
            let send = { (metadata: Metadata, request: Parley_V1_SendMessageRequest) in
                _ = try await chat.sendMessage(request, metadata: metadata) { response in
                    try await response.messages.reduce(0) { count, _ in count + 1 }
                }
            }
            #expect(
                await refusal { try await send(ana, .with { $0.sessionID = "nope" }) } == Refusal(status: .invalidArgument, code: "malformed_request")
            )
            #expect(
                await refusal {
                    try await send(
                        ana,
                        .with {
                            $0.sessionID = sessionID
                            $0.content = " "
                        }
                    )
                } == Refusal(status: .invalidArgument, code: "empty_content")
            )
            #expect(
                await refusal {
                    try await send(
                        bia,
                        .with {
                            $0.sessionID = sessionID
                            $0.content = "oi"
                        }
                    )
                } == Refusal(status: .permissionDenied, code: "forbidden")
            )
            #expect(
                await refusal { _ = try await chat.getHistory(.with { $0.sessionID = UUID().uuidString }, metadata: ana) }
                    == Refusal(status: .notFound, code: "session_not_found")
            )
            #expect(
                await refusal {
                    _ = try await chat.getHistory(
                        .with {
                            $0.sessionID = sessionID
                            $0.limit = 501
                        },
                        metadata: ana
                    )
                } == Refusal(status: .invalidArgument, code: "malformed_request")
            )
            #expect(
                await refusal {
                    _ = try await chat.cancel(
                        .with {
                            $0.sessionID = sessionID
                            $0.turnID = "x"
                        },
                        metadata: ana
                    )
                }
                    == Refusal(status: .invalidArgument, code: "malformed_request")
            )
            #expect(
                await refusal { _ = try await chat.askQuestion(.with { $0.lessonContext = "x" }, metadata: ana) }
                    == Refusal(status: .invalidArgument, code: "empty_content")
            )
        }
    }

    @Test func withAuthenticationOnACallNeedsAToken() async throws {
        let key = "ana-key-0123456789abcdef"
        try await withChat(["PARLEY_AUTH": "on", "API_KEYS": "\(key):ana"]) { chat, _ in
            #expect(await refusal { _ = try await chat.startSession(.init()) } == Refusal(status: .unauthenticated, code: "missing_token"))
            #expect(
                await refusal { _ = try await chat.startSession(.init(), metadata: ["authorization": "Bearer wrong-key-0123456789"]) }
                    == Refusal(status: .unauthenticated, code: "invalid_token")
            )
            let started = try await chat.startSession(.init(), metadata: ["authorization": "Bearer \(key)"])
            #expect(started.opening.content == "Olá! Vamos começar?")
        }
    }
}
