import Foundation
import Testing

@testable import LLMSim

@Suite("LLM simulator: wire formats")
struct SimWireTests {
    let openAI = OpenAIWire.Identity(id: "chatcmpl-abc", created: 1_700_000_000, model: "gpt-4o-mini")
    let gemini = GeminiWire.Identity(model: "gemini-2.0-flash", responseId: "r1")
    let pacing = SimPacing(firstToken: .milliseconds(100), tokensPerSecond: 10)

    /// The JSON object in `text`, or nil when it is not one.
    func object(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    /// The `delta.content` of an OpenAI chunk.
    func deltaContent(_ text: String) -> String? {
        let choices = object(text)?["choices"] as? [[String: Any]]
        return (choices?.first?["delta"] as? [String: Any])?["content"] as? String
    }

    /// The text of a Gemini chunk's first candidate.
    func candidateText(_ text: String) -> String? {
        let candidates = object(text)?["candidates"] as? [[String: Any]]
        let parts = (candidates?.first?["content"] as? [String: Any])?["parts"] as? [[String: Any]]
        return parts?.compactMap { $0["text"] as? String }.joined()
    }

    @Test func jsonIsWrittenCompactInOrderWithEscapes() {
        let value: SimJSON = ["b": 1, "a": ["x", nil, true], "s": .string("a\"b\\c\n\u{01}/é")]
        #expect(value.text == #"{"b":1,"a":["x",null,true],"s":"a\"b\\c\n\u0001/é"}"#)
    }

    @Test func anOpenAIChunkIsOneSSEEventByteForByte() {
        let chunk = OpenAIWire.chunk(openAI, choices: [OpenAIWire.choice(delta: ["content": "Olá"], finishReason: nil)], usage: nil)
        let wire = SimStreamPlan.Framing.sse(lineBreak: "\n").encode(chunk.text, index: 0)
        #expect(
            Array(wire.utf8)
                == Array(
                    (#"data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"Olá"},"logprobs":null,"finish_reason":null}]}"#
                        + "\n\n").utf8
                )
        )
    }

    @Test func aGeminiChunkIsOneSSEEventWithCRLFByteForByte() {
        let chunk = GeminiWire.response(gemini, text: "Olá, \"mundo\"", finishReason: nil, usage: GeminiWire.usage(prompt: 4, candidates: nil))
        let wire = SimStreamPlan.Framing.sse(lineBreak: "\r\n").encode(chunk.text, index: 0)
        #expect(
            Array(wire.utf8)
                == Array(
                    (#"data: {"candidates":[{"content":{"parts":[{"text":"Olá, \"mundo\""}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":4},"modelVersion":"gemini-2.0-flash","responseId":"r1"}"#
                        + "\r\n\r\n").utf8
                )
        )
    }

    @Test func anOpenAIStreamHasRoleTokensFinishUsageAndDone() throws {
        let tokens = ["Olá", "!", " tudo"]
        let plan = OpenAIWire.streamPlan(
            openAI,
            tokens: tokens,
            finishReason: "stop",
            usage: .init(prompt: 2, completion: 3),
            pacing: pacing,
            cutAfter: nil,
            malformedAfter: nil
        )
        let data = plan.events.map(\.data)
        #expect(data.count == 7)
        #expect(plan.events.map(\.at) == [100, 100, 200, 300, 300, 300, 300].map { Duration.milliseconds($0) })
        #expect(data[0].contains(#""delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#))
        #expect(data[1...3].compactMap(deltaContent).joined() == tokens.joined())
        #expect(data[0...4].allSatisfy { $0.hasSuffix(#""usage":null}"#) })
        #expect(data[4].contains(#""choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]"#))
        #expect(data[5].hasSuffix(#""choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}"#))
        #expect(data[6] == "[DONE]")
        #expect(plan.cutAt == nil && plan.wireText.hasSuffix("data: [DONE]\n\n"))
    }

    @Test(arguments: ["Olá", "", "aspas \" e \\ barras", "linha\nnova\t\u{01}", "emoji 🙂"])
    func aTemplateWritesWhatTheWholeValueWould(token: String) {
        let chunk = { (content: SimJSON) in
            OpenAIWire.chunk(self.openAI, choices: [OpenAIWire.choice(delta: ["content": content], finishReason: nil)], usage: .null)
        }
        #expect(SimJSONTemplate(chunk).text(with: token) == chunk(.string(token)).text)
    }

    @Test func eventsDueTogetherGoOutInOneWrite() {
        let tokens = ["Olá", "!", " tudo"]
        let plan = OpenAIWire.streamPlan(
            openAI,
            tokens: tokens,
            finishReason: "stop",
            usage: nil,
            pacing: pacing,
            cutAfter: nil,
            malformedAfter: nil
        )
        // Due at 100, 100, 200, 300, 300, 300 ms.
        #expect(plan.dueEvents(from: 0, by: .milliseconds(100)) == 0..<2)
        #expect(plan.dueEvents(from: 2, by: .milliseconds(250)) == 2..<3)
        #expect(plan.dueEvents(from: 3, by: .seconds(1)) == 3..<6)
        // The event waited for goes out even when the clock reads a little early.
        #expect(plan.dueEvents(from: 2, by: .milliseconds(150)) == 2..<3)
        #expect(plan.wireText(of: 0..<2) + plan.wireText(of: 2..<6) == plan.wireText)
    }

    @Test func anOpenAIStreamWithoutUsageHasNoUsageKey() {
        let plan = OpenAIWire.streamPlan(
            openAI,
            tokens: ["a"],
            finishReason: "length",
            usage: nil,
            pacing: pacing,
            cutAfter: nil,
            malformedAfter: nil
        )
        #expect(plan.events.count == 4)
        #expect(!plan.wireText.contains("usage"))
        #expect(plan.events[2].data.contains(#""finish_reason":"length""#))
    }

    @Test func aCutOpenAIStreamStopsAfterKTokensWithoutFinishOrDone() {
        let plan = OpenAIWire.streamPlan(
            openAI,
            tokens: ["a", "b", "c", "d"],
            finishReason: "stop",
            usage: nil,
            pacing: pacing,
            cutAfter: 2,
            malformedAfter: nil
        )
        #expect(plan.events.count == 3)
        #expect(plan.events.compactMap { deltaContent($0.data) }.joined() == "ab")
        #expect(plan.cutAt == .milliseconds(300))
        #expect(!plan.wireText.contains("[DONE]") && !plan.wireText.contains(#""finish_reason":"stop""#))
    }

    @Test(arguments: [(0, 1), (1, 2), (3, 4), (9, 4)])
    func aMalformedOpenAIEventComesAfterKTokensAndTheStreamGoesOn(after: Int, index: Int) {
        let plan = OpenAIWire.streamPlan(
            openAI,
            tokens: ["a", "b", "c"],
            finishReason: "stop",
            usage: nil,
            pacing: pacing,
            cutAfter: nil,
            malformedAfter: after
        )
        let invalid = plan.events.indices.filter { plan.events[$0].data != "[DONE]" && object(plan.events[$0].data) == nil }
        #expect(invalid == [index])
        #expect(plan.events.compactMap { deltaContent($0.data) }.joined() == "abc")
        #expect(plan.events.last?.data == "[DONE]")
    }

    @Test func aGeminiStreamSendsChunksOfFiveTokensAndFinishesWithUsage() {
        let tokens = SimTokenizer.exactly(12, from: [])
        let plan = GeminiWire.streamPlan(
            gemini,
            tokens: tokens,
            finishReason: "STOP",
            promptTokens: 4,
            pacing: pacing,
            cutAfter: nil,
            malformedAfter: nil,
            framing: .sse(lineBreak: "\r\n")
        )
        let data = plan.events.map(\.data)
        #expect(data.count == 3)
        #expect(plan.events.map(\.at) == [500, 1000, 1200].map { Duration.milliseconds($0) })
        #expect(data.compactMap(candidateText).joined() == tokens.joined())
        #expect(data[0...1].allSatisfy { $0.contains(#""usageMetadata":{"promptTokenCount":4},"#) && !$0.contains("finishReason") })
        #expect(
            data[2].contains(
                #""finishReason":"STOP","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_SEXUALLY_EXPLICIT","probability":"NEGLIGIBLE"}"#
            )
        )
        #expect(data[2].contains(#""usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":12,"totalTokenCount":16}"#))
        #expect(plan.wireText.hasSuffix("\"}\r\n\r\n") && !plan.wireText.contains("[DONE]"))
    }

    @Test func aCutGeminiStreamStopsAfterKTokensWithoutFinishReason() {
        let tokens = SimTokenizer.exactly(12, from: [])
        let plan = GeminiWire.streamPlan(
            gemini,
            tokens: tokens,
            finishReason: "STOP",
            promptTokens: 4,
            pacing: pacing,
            cutAfter: 7,
            malformedAfter: nil,
            framing: .sse(lineBreak: "\r\n")
        )
        #expect(plan.events.compactMap { candidateText($0.data) }.joined() == tokens.prefix(7).joined())
        #expect(!plan.wireText.contains("finishReason"))
        #expect(plan.cutAt == pacing.tokenReady(7))
    }

    @Test(arguments: [(5, 1, 4), (3, 1, 5), (12, 3, 5), (0, 0, 4)])
    func aMalformedGeminiEventComesAfterKTokens(after: Int, index: Int, count: Int) {
        let tokens = SimTokenizer.exactly(12, from: [])
        let plan = GeminiWire.streamPlan(
            gemini,
            tokens: tokens,
            finishReason: "STOP",
            promptTokens: 4,
            pacing: pacing,
            cutAfter: nil,
            malformedAfter: after,
            framing: .sse(lineBreak: "\r\n")
        )
        #expect(plan.events.count == count)
        #expect(plan.events.indices.filter { object(plan.events[$0].data) == nil } == [index])
        #expect(plan.events.compactMap { candidateText($0.data) }.joined() == tokens.joined())
        #expect(plan.events.last?.data.contains(#""finishReason":"STOP""#) == true)
    }

    @Test func withoutAltSSEGeminiStreamsOneJSONArray() throws {
        let plan = GeminiWire.streamPlan(
            gemini,
            tokens: SimTokenizer.exactly(12, from: []),
            finishReason: "STOP",
            promptTokens: 4,
            pacing: pacing,
            cutAfter: nil,
            malformedAfter: nil,
            framing: .jsonArray
        )
        let array = try #require(try JSONSerialization.jsonObject(with: Data(plan.wireText.utf8)) as? [[String: Any]])
        #expect(array.count == 3)
        #expect(plan.wireText.hasPrefix("[{") && plan.wireText.contains("},\r\n{"))
    }

    @Test func aBlockedPromptHasFeedbackAndNoCandidates() {
        let text = GeminiWire.blocked(gemini, promptTokens: 3).text
        #expect(text.hasPrefix(#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":["#))
        #expect(text.contains(#"{"category":"HARM_CATEGORY_HARASSMENT","probability":"HIGH","blocked":true}"#))
        #expect(text.contains(#""usageMetadata":{"promptTokenCount":3,"totalTokenCount":3}"#) && !text.contains("candidates"))
    }

    @Test func openAIErrorsHaveOpenAIsShape() throws {
        let rate = try #require(OpenAIWire.error(for: .error(status: 429, retryAfter: 2), model: "m"))
        #expect(rate.status == 429 && rate.retryAfter == 2)
        #expect(rate.body.text.hasSuffix(#""type":"requests","param":null,"code":"rate_limit_exceeded"}}"#))
        let quota = try #require(OpenAIWire.error(for: .quota, model: "m"))
        #expect(quota.status == 429 && quota.retryAfter == nil)
        #expect(quota.body.text.hasSuffix(#""type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#))
        let overloaded = try #require(OpenAIWire.error(for: .error(status: 503, retryAfter: nil), model: "m"))
        #expect(
            overloaded.body.text
                == #"{"error":{"message":"The engine is currently overloaded, please try again later.","type":"server_error","param":null,"code":null}}"#
        )
        #expect(OpenAIWire.error(for: .reply, model: "m") == nil)
    }

    @Test func geminiErrorsHaveGooglesShape() throws {
        let rate = try #require(GeminiWire.error(for: .error(status: 429, retryAfter: 2), model: "g"))
        #expect(
            rate.body.text
                == #"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}]}}"#
        )
        let overloaded = try #require(GeminiWire.error(for: .error(status: 503, retryAfter: nil), model: "g"))
        #expect(
            overloaded.body.text
                == #"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#
        )
        #expect(GeminiWire.error(for: .quota, model: "g")?.body.text.contains("RetryInfo") == false)
        #expect(GeminiWire.error(for: .error(status: 500, retryAfter: nil), model: "g")?.body.text.contains(#""status":"INTERNAL""#) == true)
    }

    @Test func aGeminiRequestIsDecodedLeniently() throws {
        let json = #"""
            {"contents":[{"role":"user","parts":[{"text":"a"},{"text":"b"}]},{"role":"model","parts":[{"text":"c"}]},
             {"parts":[{"text":"d"},{"inlineData":{"mimeType":"image/png","data":"AA=="}}]}],
             "system_instruction":{"parts":[{"text":"sys"}]},
             "generationConfig":{"temperature":0.5,"maxOutputTokens":64,"topP":0.9,"thinkingConfig":{"thinkingBudget":0}},
             "safetySettings":[]}
            """#
        let request = try JSONDecoder().decode(GeminiWire.Request.self, from: Data(json.utf8))
        #expect(request.conversation.map(\.role) == ["system", "user", "assistant", "user"])
        #expect(request.conversation.map(\.content) == ["sys", "ab", "c", "d"])
        #expect(request.maxOutputTokens == 64)
    }

    @Test func anOpenAIRequestAcceptsContentPartsAndNullContent() throws {
        let json = #"""
            {"model":"m","messages":[{"role":"developer","content":"sys"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
             {"role":"assistant","content":null,"tool_calls":[]}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":9,"temperature":1}
            """#
        let request = try JSONDecoder().decode(OpenAIWire.Request.self, from: Data(json.utf8))
        #expect(request.conversation.map(\.role) == ["system", "user", "assistant"])
        #expect(request.conversation.map(\.content) == ["sys", "ab", ""])
        #expect(request.stream == true && request.stream_options?.include_usage == true && request.max_tokens == 9)
    }

    @Test(arguments: [
        ("gemini-2.0-flash:generateContent", "gemini-2.0-flash", "generateContent"),
        ("tunedModels/x:streamGenerateContent", "tunedModels/x", "streamGenerateContent"),
        ("gemini-1.5-pro", "gemini-1.5-pro", ""),
    ])
    func theGeminiTargetIsSplitAtItsLastColon(target: String, model: String, method: String) {
        let split = GeminiEndpoint.split(target: target)
        #expect(split.model == model && split.method == method)
    }
}
