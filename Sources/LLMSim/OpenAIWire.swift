/// OpenAI's chat-completions wire format: the request the simulator reads, and the
/// bodies, stream chunks and errors it writes, key for key as OpenAI sends them.
enum OpenAIWire {
    struct Request: Decodable, Sendable {
        struct Message: Decodable, Sendable {
            var role: String
            /// A string, or the text parts of an array of content parts, joined.
            var content: String?

            private enum CodingKeys: String, CodingKey { case role, content }
            private struct Part: Decodable { var text: String? }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                role = try container.decode(String.self, forKey: .role)
                if let text = try? container.decodeIfPresent(String.self, forKey: .content) {
                    content = text
                } else if let parts = try? container.decodeIfPresent([Part].self, forKey: .content) {
                    content = parts.compactMap(\.text).joined()
                } else {
                    content = nil
                }
            }
        }

        struct StreamOptions: Decodable, Sendable {
            var include_usage: Bool?
        }

        var model: String
        var messages: [Message]
        var stream: Bool?
        var stream_options: StreamOptions?
        var max_tokens: Int?
        var max_completion_tokens: Int?

        /// The conversation with OpenAI's `developer` role read as `system`.
        var conversation: [SimulatedTutor.Message] {
            messages.map { .init(role: $0.role == "developer" ? "system" : $0.role, content: $0.content ?? "") }
        }
    }

    /// Where one response's chunks come from.
    struct Identity: Sendable {
        var id: String
        var created: Int
        var model: String
    }

    struct Usage: Sendable, Equatable {
        var prompt: Int
        var completion: Int

        var json: SimJSON {
            ["prompt_tokens": .int(prompt), "completion_tokens": .int(completion), "total_tokens": .int(prompt + completion)]
        }
    }

    /// A `chat.completion` body.
    static func completion(_ identity: Identity, text: String, finishReason: String, usage: Usage) -> SimJSON {
        [
            "id": .string(identity.id), "object": "chat.completion", "created": .int(identity.created),
            "model": .string(identity.model),
            "choices": [
                [
                    "index": 0, "message": ["role": "assistant", "content": .string(text), "refusal": nil],
                    "logprobs": nil, "finish_reason": .string(finishReason),
                ]
            ],
            "usage": usage.json, "system_fingerprint": nil,
        ]
    }

    /// A `chat.completion.chunk`. `usage` is left out when nil (the request did not ask
    /// for usage), written as `null` when `.some(nil)`.
    static func chunk(_ identity: Identity, choices: [SimJSON], usage: SimJSON?) -> SimJSON {
        var members: [SimJSON.Member] = [
            .init(key: "id", value: .string(identity.id)), .init(key: "object", value: "chat.completion.chunk"),
            .init(key: "created", value: .int(identity.created)), .init(key: "model", value: .string(identity.model)),
            .init(key: "system_fingerprint", value: nil), .init(key: "choices", value: .array(choices)),
        ]
        if let usage { members.append(.init(key: "usage", value: usage)) }
        return .object(members)
    }

    /// One choice of a chunk.
    static func choice(delta: SimJSON, finishReason: String?) -> SimJSON {
        ["index": 0, "delta": delta, "logprobs": nil, "finish_reason": .optional(finishReason)]
    }

    /// The chunks of a streamed answer: the role, one chunk per token, the finish reason,
    /// the usage (when asked for) and `[DONE]`, paced by the turn's timing, with its
    /// `cut=` and `malformed=` faults.
    static func streamPlan(
        _ identity: Identity,
        tokens: [String],
        finishReason: String,
        usage: Usage?,
        pacing: SimPacing,
        cutAfter: Int?,
        malformedAfter: Int?
    ) -> SimStreamPlan {
        var plan = SimStreamPlan(framing: .sse(lineBreak: "\n"))
        let nullUsage: SimJSON? = usage == nil ? nil : .null
        func delta(_ content: SimJSON, finishReason: String? = nil) -> SimJSON {
            chunk(identity, choices: [choice(delta: content, finishReason: finishReason)], usage: nullUsage)
        }
        func add(_ json: SimJSON, at: Duration) { plan.events.append(.init(at: at, data: json.text)) }
        let tokenChunk = SimJSONTemplate { delta(["content": $0]) }
        func addMalformed(afterTokens count: Int) {
            let broken = SimStreamPlan.malformed(delta(["content": ""]).text)
            plan.events.append(.init(at: pacing.tokenReady(max(0, count - 1)), data: broken))
        }
        let cut = cutAfter.map { min($0, tokens.count) }
        let malformed = malformedAfter.map { min($0, tokens.count) }
        let sent = cut ?? tokens.count
        add(delta(["role": "assistant", "content": ""]), at: pacing.tokenReady(0))
        for index in 0..<sent {
            if malformed == index { addMalformed(afterTokens: index) }
            plan.events.append(.init(at: pacing.tokenReady(index), data: tokenChunk.text(with: tokens[index])))
        }
        if malformed == sent { addMalformed(afterTokens: sent) }
        if let cut {
            plan.cutAt = pacing.tokenReady(cut)
            return plan
        }
        let end = pacing.tokenReady(max(0, tokens.count - 1))
        add(delta([:], finishReason: finishReason), at: end)
        if let usage { add(chunk(identity, choices: [], usage: usage.json), at: end) }
        plan.events.append(.init(at: end, data: "[DONE]"))
        return plan
    }

    /// An error body: `{"error":{"message":…,"type":…,"param":null,"code":…}}`.
    static func error(message: String, type: String, code: String?) -> SimJSON {
        ["error": ["message": .string(message), "type": .string(type), "param": nil, "code": .optional(code)]]
    }

    /// The error OpenAI answers a failed turn with: status, body and the seconds for `Retry-After`.
    static func error(for outcome: SimTurn.Outcome, model: String) -> (status: Int, body: SimJSON, retryAfter: Int?)? {
        switch outcome {
        case .reply, .blocked:
            return nil
        case .quota:
            return (429, error(message: quotaMessage, type: "insufficient_quota", code: "insufficient_quota"), nil)
        case .error(let status, let retryAfter):
            let body: SimJSON =
                switch status {
                case 400: error(message: "Simulated bad request.", type: "invalid_request_error", code: nil)
                case 401: error(message: "Incorrect API key provided.", type: "invalid_request_error", code: "invalid_api_key")
                case 404:
                    error(
                        message: "The model `\(model)` does not exist or you do not have access to it.",
                        type: "invalid_request_error",
                        code: "model_not_found"
                    )
                case 429: error(message: rateLimitMessage(model: model, retryAfter: retryAfter ?? 1), type: "requests", code: "rate_limit_exceeded")
                case 503: error(message: "The engine is currently overloaded, please try again later.", type: "server_error", code: nil)
                case 500...599:
                    error(message: "The server had an error while processing your request. Sorry about that!", type: "server_error", code: nil)
                default: error(message: "Simulated failure \(status).", type: "invalid_request_error", code: nil)
                }
            return (status, body, retryAfter)
        }
    }

    static let missingKeyMessage =
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
    static let quotaMessage =
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
    static let unparsableMessage =
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"

    static func rateLimitMessage(model: String, retryAfter: Int) -> String {
        "Rate limit reached for \(model) in organization org-parleysim on requests per min (RPM): Limit 10000, Used 10000, Requested 1. Please try again in \(retryAfter)s. Visit https://platform.openai.com/account/rate-limits to learn more."
    }
}
