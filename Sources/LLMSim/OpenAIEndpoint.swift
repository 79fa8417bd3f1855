import Foundation
import Hummingbird
import Logging

/// `POST /v1/chat/completions`, streaming (`"stream": true`) or not.
struct OpenAIEndpoint: Sendable {
    let engine: SimEngine

    func respond(to request: Request, context: some RequestContext) async throws -> Response {
        let start = ContinuousClock.now
        let bytes = try await request.body.collect(upTo: SimHTTP.maxRequestBytes)
        let body = SimHTTP.decode(OpenAIWire.Request.self, from: bytes)
        let stream = body?.stream == true
        engine.stats.count(stream ? .openaiStream : .openai)

        guard Self.hasBearerToken(request.headers) else {
            let limits = engine.consumeRateLimits(tokens: 0)
            return SimHTTP.json(
                OpenAIWire.error(message: OpenAIWire.missingKeyMessage, type: "invalid_request_error", code: "invalid_api_key"),
                status: 401,
                headers: limits.headers + requestID()
            )
        }
        guard let body else {
            let limits = engine.consumeRateLimits(tokens: 0)
            return SimHTTP.json(
                OpenAIWire.error(message: OpenAIWire.unparsableMessage, type: "invalid_request_error", code: nil),
                status: 400,
                headers: limits.headers + requestID()
            )
        }

        let turn = engine.prepare(
            SimExchange(
                provider: .openai,
                stream: stream,
                conversation: body.conversation,
                maxOutputTokens: body.max_completion_tokens ?? body.max_tokens,
                header: SimHTTP.header("x-sim", in: request.headers)
            )
        )
        var limits = engine.consumeRateLimits(tokens: turn.promptTokens + turn.tokens.count)
        turn.log(to: context.logger, request: "chat completion", model: body.model, stream: stream)

        if let failure = OpenAIWire.error(for: turn.outcome, model: body.model) {
            var extra: [(String, String)] = []
            if let retryAfter = failure.retryAfter {
                extra.append(("retry-after", String(retryAfter)))
                if failure.status == 429 {
                    limits.remainingRequests = 0
                    limits.resetRequests = .seconds(retryAfter)
                }
            }
            try await SimHTTP.wait(until: turn.errorDelay, after: start)
            return SimHTTP.json(failure.body, status: failure.status, headers: limits.headers + requestID() + extra)
        }

        let blocked = turn.outcome == .blocked
        let tokens = blocked ? [] : turn.tokens
        let finishReason = blocked ? "content_filter" : turn.truncated ? "length" : "stop"
        let usage = OpenAIWire.Usage(prompt: turn.promptTokens, completion: tokens.count)
        let identity = OpenAIWire.Identity(
            id: "chatcmpl-" + SimHTTP.randomID(length: 29),
            created: Int(Date().timeIntervalSince1970),
            model: body.model
        )
        let headers = limits.headers + requestID()

        if stream {
            var plan = OpenAIWire.streamPlan(
                identity,
                tokens: tokens,
                finishReason: finishReason,
                usage: body.stream_options?.include_usage == true ? usage : nil,
                pacing: turn.pacing,
                cutAfter: turn.directives.cutAfter,
                malformedAfter: turn.directives.malformedAfter
            )
            // Event 0 is the role chunk; the first token comes with event 1.
            plan.traceFirstText(at: tokens.isEmpty ? nil : 1, of: body.conversation, in: engine.stats)
            return Response(
                status: .ok,
                headers: SimHTTP.fields([("content-type", "text/event-stream"), ("cache-control", "no-cache")] + headers),
                body: plan.body(from: start)
            )
        }
        if let cut = turn.directives.cutAfter {
            try await SimHTTP.wait(until: turn.pacing.tokenReady(min(cut, tokens.count)), after: start)
            return Response(status: .ok, headers: SimHTTP.fields([("content-type", "application/json")] + headers), body: .cut)
        }
        try await SimHTTP.wait(until: turn.pacing.wholeAnswer(tokens: tokens.count), after: start)
        let json = OpenAIWire.completion(identity, text: tokens.joined(), finishReason: finishReason, usage: usage)
        if turn.directives.malformedAfter != nil {
            return SimHTTP.response(status: 200, contentType: "application/json", text: SimStreamPlan.malformed(json.text), headers: headers)
        }
        return SimHTTP.json(json, headers: headers)
    }

    /// Whether the request carries `Authorization: Bearer <something>`.
    static func hasBearerToken(_ headers: HTTPFields) -> Bool {
        guard let value = headers[.authorization], value.lowercased().hasPrefix("bearer ") else { return false }
        return !value.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces).isEmpty
    }

    private func requestID() -> [(String, String)] {
        [("x-request-id", "req_" + SimHTTP.randomID(length: 32).lowercased())]
    }
}
