import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import ParleySupport
import Synchronization
import Testing

@testable import Shared
@testable import Worker

/// A local server that answers every request with one recorded response of a real
/// provider API (from `Fixtures/`), written in small pieces so that events arrive
/// split across buffers, and that remembers what it was asked.
struct FixtureServer {
    struct Recorded: Sendable {
        var path: String
        var query: String?
        var headers: [String: String]
        var body: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(bodyBytes)) as? [String: Any]) ?? [:] }
        var bodyBytes: [UInt8]
    }

    /// How the body goes out.
    enum Writes: Sendable {
        /// Seven bytes a write, at once: events cut anywhere, reads as they come.
        case sevenBytes
        /// A line a write, 20 ms apart: each event arrives in a read of its own.
        case lineByLine
        /// All of it in one write: a fast model's whole answer in one read.
        case whole
    }

    let status: HTTPResponse.Status
    let fixture: String
    var contentType = "application/json"
    var headers: [String: String] = [:]
    var writes = Writes.sevenBytes
    let requests = Locked<[Recorded]>([])

    static func fixture(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/\(name)")
        return Array(try Data(contentsOf: url))
    }

    /// Runs `body` with the base URL of the running server.
    func run(_ body: @Sendable (String) async throws -> Void) async throws {
        let bytes = try Self.fixture(fixture)
        let router = Router()
        let (status, contentType, extraHeaders, requests, writes) = (self.status, self.contentType, self.headers, self.requests, self.writes)
        router.post("**") { request, context -> Response in
            let received = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            requests.withLock {
                $0.append(Recorded(path: request.uri.path, query: request.uri.query, headers: headers, bodyBytes: Array(received.readableBytesView)))
            }
            var fields: HTTPFields = [.contentType: contentType]
            for (name, value) in extraHeaders { fields[HTTPField.Name(name)!] = value }
            return Response(
                status: status,
                headers: fields,
                body: ResponseBody { writer in
                    switch writes {
                    case .sevenBytes:
                        for start in stride(from: 0, to: bytes.count, by: 7) {
                            try await writer.write(ByteBuffer(bytes: bytes[start..<min(start + 7, bytes.count)]))
                        }
                    case .lineByLine:
                        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                            try await writer.write(ByteBuffer(bytes: Array(line) + [UInt8(ascii: "\n")]))
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    case .whole:
                        try await writer.write(ByteBuffer(bytes: bytes))
                    }
                    try await writer.finish(nil)
                }
            )
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body("http://127.0.0.1:\(try #require(client.port))")
        }
    }
}

@Suite("Provider clients against recorded API responses")
struct ProviderFixtureTests {
    static let prompt = [
        PromptMessage(role: .system, content: "Você é um tutor."), PromptMessage(role: .assistant, content: "Olá!"),
        PromptMessage(role: .user, content: "Oi"),
    ]

    func withClients(_ body: (LLMTransport) async throws -> Void) async throws {
        let httpClient = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await body(LLMTransport(httpClient: httpClient, attemptTimeout: .seconds(10), idleTimeout: .seconds(5)))
        } catch {
            try await httpClient.shutdown()
            throw error
        }
        try await httpClient.shutdown()
    }

    func openAI(_ base: String, _ transport: LLMTransport) -> OpenAIChatClient {
        OpenAIChatClient(settings: .init(baseURL: "\(base)/v1", apiKey: "sk-test", model: "gpt-4o-mini"), transport: transport)
    }

    func gemini(_ base: String, _ transport: LLMTransport) -> GeminiChatClient {
        GeminiChatClient(
            settings: .init(baseURL: "\(base)/v1beta", apiKey: "g-key", model: "gemini-2.5-flash", temperature: 0.7, maxOutputTokens: 512),
            transport: transport
        )
    }

    // MARK: OpenAI

    /// Each read's text is one piece; the read that ends the answer streams nothing (the
    /// reply right behind it carries the text): events a read apart stream one by one,
    /// an answer in one read streams nothing, and events cut anywhere stream a prefix.
    @Test(arguments: [
        (FixtureServer.Writes.lineByLine, ["Olá", "! Vamos", " começar", "."] as [String]?), (.whole, []), (.sevenBytes, nil),
    ])
    func openAIStreamingIsParsedPieceByPiece(writes: FixtureServer.Writes, expected: [String]?) async throws {
        var server = FixtureServer(status: .ok, fixture: "openai/stream-ok.sse", contentType: "text/event-stream")
        server.writes = writes
        try await server.run { base in
            try await withClients { transport in
                let pieces = Locked<[String]>([])
                let completion = try await openAI(base, transport).stream(Self.prompt) { piece in pieces.withLock { $0.append(piece) } }
                if let expected { #expect(pieces.value == expected) }
                #expect(completion.text.hasPrefix(pieces.value.joined()))
                #expect(
                    completion
                        == ChatCompletion(
                            text: "Olá! Vamos começar.",
                            model: "gpt-4o-mini-2024-07-18",
                            usage: .init(promptTokens: 19, completionTokens: 6),
                            finishReason: "stop"
                        )
                )
            }
        }
        let request = try #require(server.requests.value.first)
        #expect(request.path == "/v1/chat/completions")
        #expect(request.headers["authorization"] == "Bearer sk-test")
        #expect(request.body["stream"] as? Bool == true)
        #expect((request.body["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
        let messages = try #require(request.body["messages"] as? [[String: String]])
        #expect(messages.map { $0["role"] ?? "" } == ["system", "assistant", "user"])
    }

    @Test func openAIWithoutStreaming() async throws {
        let server = FixtureServer(status: .ok, fixture: "openai/complete-ok.json")
        try await server.run { base in
            try await withClients { transport in
                let completion = try await openAI(base, transport).complete(Self.prompt)
                #expect(completion.text == "Olá! Vamos começar.")
                #expect(completion.usage == .init(promptTokens: 19, completionTokens: 6))
            }
        }
        #expect(server.requests.value.first?.body["stream"] == nil)
    }

    @Test(arguments: [
        ("openai/stream-cut.sse", "the stream ended before [DONE]"),
        ("openai/stream-malformed.sse", "an unreadable stream chunk"),
    ])
    func aBrokenOpenAIStreamIsAMalformedResponse(fixture: String, expected: String) async throws {
        let server = FixtureServer(status: .ok, fixture: fixture, contentType: "text/event-stream")
        try await server.run { base in
            try await withClients { transport in
                await #expect { _ = try await openAI(base, transport).stream(Self.prompt) { _ in } } throws: { error in
                    guard case .malformedResponse(let why) = error as? LLMError else { return false }
                    return why.hasPrefix(expected)
                }
            }
        }
    }

    @Test(arguments: [
        (
            HTTPResponse.Status.tooManyRequests, "openai/error-429-rate-limit.json", ["retry-after": "20"],
            LLMError.rateLimited(
                retryAfter: .seconds(20),
                message:
                    "Rate limit reached for gpt-4o-mini in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."
            )
        ),
        (
            .tooManyRequests, "openai/error-429-rate-limit.json", ["x-ratelimit-reset-requests": "6m0s"],
            .rateLimited(
                retryAfter: .seconds(360),
                message:
                    "Rate limit reached for gpt-4o-mini in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."
            )
        ),
        (
            .tooManyRequests, "openai/error-429-insufficient-quota.json", [:],
            .quotaExceeded("You exceeded your current quota, please check your plan and billing details.")
        ),
        (
            .unauthorized, "openai/error-401.json", [:],
            .rejected(
                status: 401,
                message: "Incorrect API key provided: sk-abc. You can find your API key at https://platform.openai.com/account/api-keys."
            )
        ),
        (.serviceUnavailable, "openai/error-503.json", [:], .unavailable("HTTP 503: The server is overloaded or not ready yet.")),
    ])
    func openAIErrorsAreClassified(status: HTTPResponse.Status, fixture: String, headers: [String: String], expected: LLMError) async throws {
        for streaming in [false, true] {
            let server = FixtureServer(status: status, fixture: fixture, headers: headers)
            try await server.run { base in
                try await withClients { transport in
                    let client = openAI(base, transport)
                    await #expect(throws: expected) {
                        if streaming { _ = try await client.stream(Self.prompt) { _ in } } else { _ = try await client.complete(Self.prompt) }
                    }
                }
            }
        }
    }

    // MARK: Gemini

    @Test(
        arguments: ["gemini/stream-ok.sse", "gemini/stream-no-final-blank-line.sse", "gemini/stream-with-thoughts.sse"],
        [
            FixtureServer.Writes.lineByLine, .sevenBytes,
        ]
    )
    func geminiStreamingIsParsedPieceByPiece(fixture: String, writes: FixtureServer.Writes) async throws {
        var server = FixtureServer(status: .ok, fixture: fixture, contentType: "text/event-stream")
        server.writes = writes
        try await server.run { base in
            try await withClients { transport in
                let pieces = Locked<[String]>([])
                let completion = try await gemini(base, transport).stream(Self.prompt) { piece in pieces.withLock { $0.append(piece) } }
                // The last event, with the finishReason, ends the answer: its text only in the reply.
                if writes == .lineByLine { #expect(pieces.value == ["Olá! Vamos"]) }
                #expect(completion.text.hasPrefix(pieces.value.joined()))
                #expect(
                    completion
                        == ChatCompletion(
                            text: "Olá! Vamos começar.",
                            model: "gemini-2.5-flash",
                            usage: .init(promptTokens: 12, completionTokens: 29),
                            finishReason: "STOP"
                        )
                )
            }
        }
        let request = try #require(server.requests.value.first)
        #expect(request.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent")
        #expect(request.query == "alt=sse")
        #expect(request.headers["x-goog-api-key"] == "g-key")
        let body = request.body
        let system = try #require(body["systemInstruction"] as? [String: Any])
        #expect(((system["parts"] as? [[String: String]])?.first)?["text"] == "Você é um tutor.")
        let contents = try #require(body["contents"] as? [[String: Any]])
        #expect(contents.map { $0["role"] as? String } == ["user", "model", "user"])  // a user turn first, as Gemini wants
        let config = try #require(body["generationConfig"] as? [String: Any])
        #expect(config["temperature"] as? Double == 0.7)
        #expect(config["maxOutputTokens"] as? Int == 512)
    }

    @Test(arguments: [
        ("gemini/complete-ok.json", "STOP"), ("gemini/complete-max-tokens.json", "MAX_TOKENS"),
        ("gemini/complete-unknown-finish-reason.json", "SOME_FUTURE_REASON"),
    ])
    func geminiWithoutStreamingAcceptsAnyFinishReason(fixture: String, finishReason: String) async throws {
        let server = FixtureServer(status: .ok, fixture: fixture)
        try await server.run { base in
            try await withClients { transport in
                let completion = try await gemini(base, transport).complete(Self.prompt)
                #expect(completion.text == "Olá! Vamos começar.")
                #expect(completion.finishReason == finishReason)
            }
        }
        #expect(server.requests.value.first?.path == "/v1beta/models/gemini-2.5-flash:generateContent")
    }

    /// Token counts are outside input: an overflowing sum crashed the worker.
    @Test func hostileGeminiTokenCountsAreClampedNotATrap() async throws {
        let server = FixtureServer(status: .ok, fixture: "gemini/complete-hostile-usage.json")
        try await server.run { base in
            try await withClients { transport in
                let completion = try await gemini(base, transport).complete(Self.prompt)
                #expect(completion.usage == TokenUsage(promptTokens: 0, completionTokens: Int(Int32.max)))
            }
        }
    }

    @Test(arguments: [
        (HTTPResponse.Status.ok, "gemini/blocked-prompt.json", LLMError.blocked("the prompt was blocked (SAFETY)")),
        (.ok, "gemini/finish-safety.json", .blocked("the answer was withheld (SAFETY)")),
        (
            .tooManyRequests, "gemini/error-429.json",
            .rateLimited(
                retryAfter: .seconds(17),
                message:
                    "RESOURCE_EXHAUSTED: You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
            )
        ),
        (.serviceUnavailable, "gemini/error-503.json", .unavailable("HTTP 503: UNAVAILABLE: The model is overloaded. Please try again later.")),
        (
            .badRequest, "gemini/error-400-bad-key.json",
            .rejected(status: 400, message: "INVALID_ARGUMENT: API key not valid. Please pass a valid API key.")
        ),
    ])
    func geminiRefusalsAndErrorsAreClassified(status: HTTPResponse.Status, fixture: String, expected: LLMError) async throws {
        let server = FixtureServer(status: status, fixture: fixture)
        try await server.run { base in
            try await withClients { transport in
                await #expect(throws: expected) { _ = try await gemini(base, transport).complete(Self.prompt) }
            }
        }
    }

    @Test func aGeminiStreamThatStopsEarlyIsAMalformedResponse() async throws {
        let server = FixtureServer(status: .ok, fixture: "gemini/stream-cut.sse", contentType: "text/event-stream")
        try await server.run { base in
            try await withClients { transport in
                await #expect(throws: LLMError.malformedResponse("the stream ended before a finishReason")) {
                    _ = try await gemini(base, transport).stream(Self.prompt) { _ in }
                }
            }
        }
    }

    @Test(arguments: [("1s", 1000), ("6m0s", 360_000), ("1h2m3.5s", 3_723_500), ("250ms", 250), ("x", -1), ("5", -1)])
    func retryHintsInGoDurationFormat(text: String, milliseconds: Int) {
        #expect(RetryHint.goDuration(text) == (milliseconds < 0 ? nil : .milliseconds(milliseconds)))
    }

    /// A hostile or buggy endpoint must not trap the worker: numbers too large for a
    /// Duration are capped at a day (the retry policy then refuses to wait that long),
    /// negatives mean now, and what is not a number is no hint.
    @Test(
        arguments: [
            ("1e300", Duration.longestUntrusted), ("inf", .longestUntrusted), ("-inf", .zero), ("-5", .zero), ("nan", nil),
            ("2.5", .milliseconds(2500)), ("1e18", .longestUntrusted),
        ] as [(String, Duration?)]
    )
    func retryAfterOutOfRangeIsClampedNotATrap(value: String, expected: Duration?) {
        var headers = NIOHTTP1.HTTPHeaders()
        headers.add(name: "Retry-After", value: value)
        #expect(RetryHint.from(headers) == expected)
    }

    @Test(
        arguments: [
            ("99999999999999999999h", Duration.longestUntrusted), ("1e400s", nil), ("1e300s", nil), ("1.5e3s", nil),
        ] as [(String, Duration?)]
    )
    func hugeGoDurationsAreClamped(text: String, expected: Duration?) {
        #expect(RetryHint.goDuration(text) == expected)
    }

    @Test(
        arguments: [
            ("1e400s", Duration.longestUntrusted), ("infs", .longestUntrusted), ("nans", nil), ("-3s", .zero), ("0.5s", .milliseconds(500)),
        ] as [(String, Duration?)]
    )
    func hugeGeminiRetryDelaysAreClamped(text: String, expected: Duration?) {
        #expect(RetryHint.protobufDuration(text) == expected)
    }

    /// `Retry-After` as an HTTP date: read without a DateFormatter, and strictly.
    @Test(
        arguments: [
            ("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777.0), ("Thu, 01 Jan 1970 00:00:00 GMT", 0), ("Tue, 29 Feb 2028 23:59:60 GMT", 1_835_481_600),
            ("Sun, 06 Nov 1994 08:49:37 UTC", nil), ("Sunday, 06-Nov-94 08:49:37 GMT", nil), ("Sun, 6 Nov 1994 08:49:37 GMT", nil),
            ("Sun, 06 Nov 1994 24:00:00 GMT", nil), ("Sun, 06 Foo 1994 08:49:37 GMT", nil), ("Sun, +6 Nov 1994 08:49:37 GMT", nil), ("", nil),
        ] as [(String, Double?)]
    )
    func httpDatesAreReadByHand(text: String, epochSeconds: Double?) {
        #expect(RetryHint.httpDate(text)?.timeIntervalSince1970 == epochSeconds)
    }

    @Test func aRetryAfterDateIsTheTimeUntilThen() {
        let now = Date(timeIntervalSince1970: 784_111_767)
        #expect(RetryHint.from(retryAfter: "Sun, 06 Nov 1994 08:49:37 GMT", resetRequests: nil, now: now) == .seconds(10))
    }
}
