import Foundation
import Hummingbird
import Logging

/// `POST /v1beta/models/{model}:generateContent` and `…:streamGenerateContent`
/// (`?alt=sse` for server-sent events, otherwise a streamed JSON array, as Google does).
/// The router cannot split `{model}:{method}` itself, so the route captures the last
/// path component whole and this type splits it at its last colon.
struct GeminiEndpoint: Sendable {
    let engine: SimEngine

    static let jsonType = "application/json; charset=UTF-8"

    func respond(to request: Request, context: some RequestContext) async throws -> Response {
        let start = ContinuousClock.now
        let target = context.parameters.get("target") ?? ""
        let (model, method) = Self.split(target: target.removingPercentEncoding ?? target)
        let stream = method == "streamGenerateContent"
        engine.stats.count(stream ? .geminiStream : .gemini)
        let bytes = try await request.body.collect(upTo: SimHTTP.maxRequestBytes)

        guard Self.hasAPIKey(request) else {
            return json(GeminiWire.error(code: 403, message: GeminiWire.missingKeyMessage), status: 403)
        }
        guard !model.isEmpty, stream || method == "generateContent" else {
            let message = GeminiWire.notFoundMessage(model: model, method: method.isEmpty ? "generateContent" : method)
            return json(GeminiWire.error(code: 404, message: message), status: 404)
        }
        guard let body = SimHTTP.decode(GeminiWire.Request.self, from: bytes) else {
            return json(GeminiWire.error(code: 400, message: "Invalid JSON payload received."), status: 400)
        }
        guard !body.contents.isEmpty else {
            return json(
                GeminiWire.error(code: 400, message: "* GenerateContentRequest.contents: contents is not specified\n"),
                status: 400
            )
        }

        let turn = engine.prepare(
            SimExchange(
                provider: .gemini,
                stream: stream,
                conversation: body.conversation,
                maxOutputTokens: body.maxOutputTokens,
                header: SimHTTP.header("x-sim", in: request.headers)
            )
        )
        turn.log(to: context.logger, request: "generate content", model: model, stream: stream)

        if let failure = GeminiWire.error(for: turn.outcome, model: model) {
            try await SimHTTP.wait(until: turn.errorDelay, after: start)
            return json(failure.body, status: failure.status)
        }

        let identity = GeminiWire.Identity(model: model, responseId: SimHTTP.randomID(length: 22))
        let sse = request.uri.queryParameters["alt"] == "sse"
        let framing: SimStreamPlan.Framing = sse ? .sse(lineBreak: "\r\n") : .jsonArray
        let streamType = sse ? "text/event-stream" : Self.jsonType

        if turn.outcome == .blocked {
            let feedback = GeminiWire.blocked(identity, promptTokens: turn.promptTokens)
            guard stream else {
                try await SimHTTP.wait(until: turn.pacing.firstToken, after: start)
                return json(feedback)
            }
            let plan = SimStreamPlan(framing: framing, events: [.init(at: turn.pacing.firstToken, data: feedback.text)])
            return Response(status: .ok, headers: SimHTTP.fields([("content-type", streamType)]), body: plan.body(from: start))
        }

        let finishReason = turn.truncated ? "MAX_TOKENS" : "STOP"
        if stream {
            var plan = GeminiWire.streamPlan(
                identity,
                tokens: turn.tokens,
                finishReason: finishReason,
                promptTokens: turn.promptTokens,
                pacing: turn.pacing,
                cutAfter: turn.directives.cutAfter,
                malformedAfter: turn.directives.malformedAfter,
                framing: framing
            )
            plan.traceFirstText(at: turn.tokens.isEmpty ? nil : 0, of: body.conversation, in: engine.stats)
            return Response(status: .ok, headers: SimHTTP.fields([("content-type", streamType)]), body: plan.body(from: start))
        }
        if let cut = turn.directives.cutAfter {
            try await SimHTTP.wait(until: turn.pacing.tokenReady(min(cut, turn.tokens.count)), after: start)
            return Response(status: .ok, headers: SimHTTP.fields([("content-type", Self.jsonType)]), body: .cut)
        }
        try await SimHTTP.wait(until: turn.pacing.wholeAnswer(tokens: turn.tokens.count), after: start)
        let answer = GeminiWire.response(
            identity,
            text: turn.text,
            finishReason: finishReason,
            usage: GeminiWire.usage(prompt: turn.promptTokens, candidates: turn.tokens.count)
        )
        if turn.directives.malformedAfter != nil {
            return SimHTTP.response(status: 200, contentType: Self.jsonType, text: SimStreamPlan.malformed(answer.text))
        }
        return json(answer)
    }

    private func json(_ value: SimJSON, status: Int = 200) -> Response {
        SimHTTP.json(value, status: status, contentType: Self.jsonType)
    }

    /// `gemini-2.0-flash:generateContent` → (`gemini-2.0-flash`, `generateContent`).
    static func split(target: String) -> (model: String, method: String) {
        guard let colon = target.lastIndex(of: ":") else { return (target, "") }
        return (String(target[..<colon]), String(target[target.index(after: colon)...]))
    }

    /// Whether the request carries an API key: the `x-goog-api-key` header or the `key` query parameter.
    static func hasAPIKey(_ request: Request) -> Bool {
        if let key = SimHTTP.header("x-goog-api-key", in: request.headers), !key.isEmpty { return true }
        if let key = request.uri.queryParameters["key"], !key.isEmpty { return true }
        return false
    }
}
