import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import LLMSim

/// The simulator's router driven in-process (no ports), for both protocols.
@Suite("LLM simulator: router")
struct SimRouterTests {
    func app() -> some ApplicationProtocol {
        var settings = SimSettings()
        settings.timing = SimTiming(timeToFirstToken: .zero, tokensPerSecond: 100_000)
        return buildApplication(settings: settings, logger: Logger(label: "sim-test"))
    }

    let openAIHeaders: HTTPFields = SimHTTP.fields([("authorization", "Bearer sim"), ("content-type", "application/json")])
    let geminiHeaders: HTTPFields = SimHTTP.fields([("x-goog-api-key", "sim"), ("content-type", "application/json")])

    func openAIBody(_ text: String, stream: Bool = false) -> ByteBuffer {
        let options = stream ? #","stream":true,"stream_options":{"include_usage":true}"# : ""
        return ByteBuffer(string: #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"\#(text)"}]\#(options)}"#)
    }

    func geminiBody(_ text: String) -> ByteBuffer {
        ByteBuffer(string: #"{"contents":[{"role":"user","parts":[{"text":"\#(text)"}]}],"generationConfig":{"temperature":0}}"#)
    }

    func object(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    func stats(_ client: some TestClientProtocol) async throws -> [String: Int] {
        let response = try await client.execute(uri: "/sim/stats", method: .get)
        return try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Int])
    }

    @Test func anOpenAIStreamArrivesAsSSEEvents() async throws {
        try await app().test(.router) { client in
            let response = try await client.execute(
                uri: "/v1/chat/completions",
                method: .post,
                headers: openAIHeaders,
                body: openAIBody("olá [sim:tokens=30]", stream: true)
            )
            #expect(response.status == .ok)
            #expect(SimHTTP.header("content-type", in: response.headers) == "text/event-stream")
            #expect(SimHTTP.header("x-ratelimit-remaining-requests", in: response.headers) != nil)
            let body = String(buffer: response.body)
            #expect(body.hasSuffix("\n\ndata: [DONE]\n\n"))
            let events = body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(events.allSatisfy { $0.hasPrefix("data: ") })
            let chunks = events.dropLast().compactMap { object(String($0.dropFirst(6))) }
            #expect(chunks.count == events.count - 1, "every event but [DONE] is JSON")
            let contents = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }
            #expect(contents.joined().hasPrefix("Resposta 1: você disse \"olá\"."))
            #expect(contents.count == 31, "the role chunk and 30 tokens")
            let usage = try #require(chunks.last?["usage"] as? [String: Int])
            #expect(usage["completion_tokens"] == 30)
        }
    }

    @Test func aGeminiStreamArrivesAsCRLFSSEEvents() async throws {
        try await app().test(.router) { client in
            let response = try await client.execute(
                uri: "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
                method: .post,
                headers: geminiHeaders,
                body: geminiBody("olá")
            )
            #expect(response.status == .ok)
            #expect(SimHTTP.header("content-type", in: response.headers) == "text/event-stream")
            let body = String(buffer: response.body)
            #expect(body.hasSuffix("}\r\n\r\n") && !body.contains("[DONE]"))
            let events = body.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
            let chunks = events.compactMap { $0.hasPrefix("data: ") ? object(String($0.dropFirst(6))) : nil }
            #expect(chunks.count == events.count && chunks.count == 2)
            let texts = chunks.compactMap {
                ((($0["candidates"] as? [[String: Any]])?.first?["content"] as? [String: Any])?["parts"] as? [[String: Any]])?.first?["text"]
                    as? String
            }
            #expect(texts.joined() == "Resposta 1: você disse \"olá\".")
            #expect((chunks.last?["candidates"] as? [[String: Any]])?.first?["finishReason"] as? String == "STOP")
            #expect((chunks.last?["usageMetadata"] as? [String: Int])?["candidatesTokenCount"] == 10)
            #expect((chunks.first?["usageMetadata"] as? [String: Int]) == ["promptTokenCount": 1])
        }
    }

    @Test func nonStreamingAnswersAndCountersWork() async throws {
        try await app().test(.router) { client in
            let openAI = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: openAIHeaders, body: openAIBody("oi"))
            #expect(openAI.status == .ok)
            let message = ((object(String(buffer: openAI.body))?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])
            #expect(message?["content"] as? String == "Resposta 1: você disse \"oi\".")
            let gemini = try await client.execute(
                uri: "/v1beta/models/gemini-2.0-flash:generateContent",
                method: .post,
                headers: geminiHeaders,
                body: geminiBody("oi")
            )
            #expect(gemini.status == .ok)
            #expect(object(String(buffer: gemini.body))?["modelVersion"] as? String == "gemini-2.0-flash")
            _ = try await client.execute(
                uri: "/v1/chat/completions",
                method: .post,
                headers: openAIHeaders,
                body: openAIBody("[sim:status=503]")
            )
            #expect(
                try await stats(client)
                    == [
                        "openai": 2, "openai_stream": 0, "gemini": 1, "gemini_stream": 0, "faults": 1, "streams_closed_by_client": 0, "requests": 3,
                        "chat_completions": 2,
                    ]
            )
            _ = try await client.execute(uri: "/sim/reset", method: .post)
            #expect(try await stats(client)["requests"] == 0)
        }
    }

    @Test func keysAreRequired() async throws {
        try await app().test(.router) { client in
            let openAI = try await client.execute(uri: "/v1/chat/completions", method: .post, body: openAIBody("oi"))
            #expect(openAI.status == .unauthorized)
            #expect(String(buffer: openAI.body).contains(#""code":"invalid_api_key""#))
            #expect(SimHTTP.header("x-ratelimit-limit-tokens", in: openAI.headers) != nil)
            let gemini = try await client.execute(uri: "/v1beta/models/g:generateContent", method: .post, body: geminiBody("oi"))
            #expect(gemini.status == .forbidden)
            #expect(String(buffer: gemini.body).contains(#""status":"PERMISSION_DENIED""#))
            let unknown = try await client.execute(uri: "/v1beta/models/g:countTokens", method: .post, headers: geminiHeaders, body: geminiBody("oi"))
            #expect(unknown.status == .notFound)
        }
    }

    @Test func aRateLimitCarriesRetryHintsAndFailFirstLetsTheRetrySucceed() async throws {
        try await app().test(.router) { client in
            let marker = "oi [sim:status=429,retry_after=3,fail_first=1]"
            let first = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: openAIHeaders, body: openAIBody(marker))
            #expect(first.status == .tooManyRequests)
            #expect(SimHTTP.header("retry-after", in: first.headers) == "3")
            #expect(SimHTTP.header("x-ratelimit-remaining-requests", in: first.headers) == "0")
            #expect(SimHTTP.header("x-ratelimit-reset-requests", in: first.headers) == "3s")
            let retry = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: openAIHeaders, body: openAIBody(marker))
            #expect(retry.status == .ok)

            var headers = geminiHeaders
            headers.append(contentsOf: SimHTTP.fields([("x-sim", "status=429,fail_first=1")]))
            let gemini = try await client.execute(uri: "/v1beta/models/g:generateContent", method: .post, headers: headers, body: geminiBody("oi"))
            #expect(gemini.status == .tooManyRequests)
            #expect(String(buffer: gemini.body).contains(#""retryDelay":"1s""#))
            let geminiRetry = try await client.execute(
                uri: "/v1beta/models/g:generateContent",
                method: .post,
                headers: headers,
                body: geminiBody("oi")
            )
            #expect(geminiRetry.status == .ok)
            #expect(try await stats(client)["faults"] == 2)
        }
    }

    @Test(arguments: [
        "/v1/chat/completions",
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        "/v1beta/models/g:generateContent",
    ])
    func aCutResponseNeverEnds(uri: String) async throws {
        try await app().test(.router) { client in
            let openAI = uri.hasPrefix("/v1/chat")
            await #expect(throws: SimConnectionCut.self) {
                try await client.execute(
                    uri: uri,
                    method: .post,
                    headers: openAI ? openAIHeaders : geminiHeaders,
                    body: openAI ? openAIBody("oi [sim:cut=2]", stream: true) : geminiBody("oi [sim:cut=2]")
                )
            }
        }
    }

    @Test func aBlockedGeminiPromptIsOneEvent() async throws {
        try await app().test(.router) { client in
            var headers = geminiHeaders
            headers.append(contentsOf: SimHTTP.fields([("x-sim", "safety")]))
            let response = try await client.execute(
                uri: "/v1beta/models/g:streamGenerateContent?alt=sse",
                method: .post,
                headers: headers,
                body: geminiBody("oi")
            )
            let body = String(buffer: response.body)
            #expect(response.status == .ok && body.hasPrefix(#"data: {"promptFeedback":{"blockReason":"SAFETY""#))
            #expect(body.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }.count == 1)
        }
    }
}
