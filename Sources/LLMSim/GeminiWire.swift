/// Google Gemini's `generateContent` wire format: the request the simulator reads
/// (leniently: unknown fields ignored, camelCase or snake_case), and the responses,
/// stream chunks and errors it writes, key for key as Gemini sends them.
enum GeminiWire {
    struct Request: Decodable, Sendable {
        struct Content: Decodable, Sendable {
            var role: String?
            var parts: [Part]?

            var text: String { (parts ?? []).compactMap(\.text).joined() }
        }

        struct Part: Decodable, Sendable {
            var text: String?
        }

        var contents: [Content]
        var systemInstruction: Content?
        var maxOutputTokens: Int?

        private struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ string: String) { stringValue = string }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            contents = try container.decodeIfPresent([Content].self, forKey: Key("contents")) ?? []
            systemInstruction =
                try container.decodeIfPresent(Content.self, forKey: Key("systemInstruction"))
                ?? container.decodeIfPresent(Content.self, forKey: Key("system_instruction"))
            let configKey = container.contains(Key("generationConfig")) ? Key("generationConfig") : Key("generation_config")
            if container.contains(configKey), let config = try? container.nestedContainer(keyedBy: Key.self, forKey: configKey) {
                maxOutputTokens =
                    (try? config.decodeIfPresent(Int.self, forKey: Key("maxOutputTokens")))
                    ?? (try? config.decodeIfPresent(Int.self, forKey: Key("max_output_tokens")))
            }
        }

        /// The conversation in the tutor's roles: the system instruction first, `model` as `assistant`.
        var conversation: [SimulatedTutor.Message] {
            let system = systemInstruction.map { [SimulatedTutor.Message(role: "system", content: $0.text)] } ?? []
            return system + contents.map { .init(role: $0.role == "model" ? "assistant" : "user", content: $0.text) }
        }
    }

    /// Where one response's chunks come from.
    struct Identity: Sendable {
        var model: String
        var responseId: String
    }

    static let harmCategories = [
        "HARM_CATEGORY_SEXUALLY_EXPLICIT", "HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
    ]

    /// The four ratings, all `NEGLIGIBLE`, or with harassment `HIGH` and blocked.
    static func safetyRatings(blocked: Bool) -> SimJSON {
        .array(
            harmCategories.map { category in
                if blocked, category == "HARM_CATEGORY_HARASSMENT" {
                    return ["category": .string(category), "probability": "HIGH", "blocked": true]
                }
                return ["category": .string(category), "probability": "NEGLIGIBLE"]
            }
        )
    }

    /// `usageMetadata`: complete, or (mid-stream) with the prompt's count only.
    static func usage(prompt: Int, candidates: Int?) -> SimJSON {
        guard let candidates else { return ["promptTokenCount": .int(prompt)] }
        return ["promptTokenCount": .int(prompt), "candidatesTokenCount": .int(candidates), "totalTokenCount": .int(prompt + candidates)]
    }

    /// A `GenerateContentResponse` with one candidate; `finishReason` nil for a mid-stream chunk.
    static func response(_ identity: Identity, text: String, finishReason: String?, usage: SimJSON) -> SimJSON {
        var candidate: [SimJSON.Member] = [.init(key: "content", value: ["parts": [["text": .string(text)]], "role": "model"])]
        if let finishReason {
            candidate.append(.init(key: "finishReason", value: .string(finishReason)))
            candidate.append(.init(key: "index", value: 0))
            candidate.append(.init(key: "safetyRatings", value: safetyRatings(blocked: false)))
        } else {
            candidate.append(.init(key: "index", value: 0))
        }
        return [
            "candidates": [.object(candidate)], "usageMetadata": usage, "modelVersion": .string(identity.model),
            "responseId": .string(identity.responseId),
        ]
    }

    /// The answer to a prompt blocked for safety: feedback and no candidates.
    static func blocked(_ identity: Identity, promptTokens: Int) -> SimJSON {
        [
            "promptFeedback": ["blockReason": "SAFETY", "safetyRatings": safetyRatings(blocked: true)],
            "usageMetadata": ["promptTokenCount": .int(promptTokens), "totalTokenCount": .int(promptTokens)],
            "modelVersion": .string(identity.model), "responseId": .string(identity.responseId),
        ]
    }

    /// The events of a streamed answer: chunks of about `chunkTokens` tokens, each sent
    /// when its last token is ready, the last with the finish reason and full usage;
    /// with the turn's `cut=` and `malformed=` faults.
    static func streamPlan(
        _ identity: Identity,
        tokens: [String],
        finishReason: String,
        promptTokens: Int,
        pacing: SimPacing,
        cutAfter: Int?,
        malformedAfter: Int?,
        framing: SimStreamPlan.Framing,
        chunkTokens: Int = 5
    ) -> SimStreamPlan {
        var plan = SimStreamPlan(framing: framing)
        let cut = cutAfter.map { min($0, tokens.count) }
        let malformed = malformedAfter.map { min($0, tokens.count) }
        let sent = cut ?? tokens.count
        let finalSeparately = cut == nil && (sent == 0 || malformed == sent)
        let partial = usage(prompt: promptTokens, candidates: nil)
        let full = usage(prompt: promptTokens, candidates: tokens.count)
        func addMalformed(afterTokens count: Int) {
            let next = response(identity, text: "", finishReason: nil, usage: partial)
            plan.events.append(.init(at: pacing.tokenReady(max(0, count - 1)), data: SimStreamPlan.malformed(next.text)))
        }
        var ends = Array(stride(from: chunkTokens, to: sent, by: chunkTokens)) + (sent > 0 ? [sent] : [])
        if let malformed, malformed > 0, malformed < sent, !ends.contains(malformed) {
            ends.append(malformed)
            ends.sort()
        }
        var start = 0
        for end in ends {
            if malformed == start { addMalformed(afterTokens: start) }
            let last = cut == nil && end == sent && !finalSeparately
            let json = response(
                identity,
                text: tokens[start..<end].joined(),
                finishReason: last ? finishReason : nil,
                usage: last ? full : partial
            )
            plan.events.append(.init(at: pacing.tokenReady(end - 1), data: json.text))
            start = end
        }
        if malformed == sent { addMalformed(afterTokens: sent) }
        if finalSeparately {
            let json = response(identity, text: "", finishReason: finishReason, usage: full)
            plan.events.append(.init(at: pacing.tokenReady(max(0, sent - 1)), data: json.text))
        }
        if let cut { plan.cutAt = pacing.tokenReady(cut) }
        return plan
    }

    /// Google's error body: `{"error":{"code":…,"message":…,"status":…,"details":[…]}}`,
    /// with a `RetryInfo` detail when `retryAfter` is set.
    static func error(code: Int, message: String, retryAfter: Int? = nil) -> SimJSON {
        var members: [SimJSON.Member] = [
            .init(key: "code", value: .int(code)), .init(key: "message", value: .string(message)),
            .init(key: "status", value: .string(status(of: code))),
        ]
        if let retryAfter {
            let retryInfo: SimJSON = ["@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": .string("\(retryAfter)s")]
            members.append(.init(key: "details", value: [retryInfo]))
        }
        return ["error": .object(members)]
    }

    /// The error Gemini answers a failed turn with.
    static func error(for outcome: SimTurn.Outcome, model: String) -> (status: Int, body: SimJSON)? {
        switch outcome {
        case .reply, .blocked:
            return nil
        case .quota:
            return (429, error(code: 429, message: quotaMessage))
        case .error(let status, let retryAfter):
            let message =
                switch status {
                case 400: "Request contains an invalid argument."
                case 401:
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
                case 403: missingKeyMessage
                case 404: notFoundMessage(model: model, method: "generateContent")
                case 429: "Resource has been exhausted (e.g. check quota)."
                case 503: "The model is overloaded. Please try again later."
                case 504: "Deadline expired before operation could complete."
                case 500...599:
                    "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
                default: "Simulated failure \(status)."
                }
            return (status, error(code: status, message: message, retryAfter: retryAfter))
        }
    }

    /// The canonical `google.rpc.Code` name Google writes for an HTTP status.
    static func status(of code: Int) -> String {
        switch code {
        case 400: "INVALID_ARGUMENT"
        case 401: "UNAUTHENTICATED"
        case 403: "PERMISSION_DENIED"
        case 404: "NOT_FOUND"
        case 409: "ABORTED"
        case 429: "RESOURCE_EXHAUSTED"
        case 499: "CANCELLED"
        case 501: "UNIMPLEMENTED"
        case 503: "UNAVAILABLE"
        case 504: "DEADLINE_EXCEEDED"
        case 400..<500: "FAILED_PRECONDITION"
        case 500: "INTERNAL"
        default: "UNKNOWN"
        }
    }

    static let missingKeyMessage =
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
    static let quotaMessage =
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."

    static func notFoundMessage(model: String, method: String) -> String {
        "models/\(model) is not found for API version v1beta, or is not supported for \(method). Call ListModels to see the list of available models and their supported methods."
    }
}
