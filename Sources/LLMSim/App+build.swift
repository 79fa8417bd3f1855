import Foundation
import Hummingbird
import Logging
import Synchronization

struct SimSettings: Sendable {
    var host = "127.0.0.1"
    var port = 8090
    /// Added to every answer, to model a model's thinking time.
    var latency: Duration = .milliseconds(50)
}

/// Counts what the simulator served, so tests can prove whether a path called the LLM.
final class SimStats: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func count(_ key: String) { counts.withLock { $0[key, default: 0] += 1 } }
    var snapshot: [String: Int] { counts.withLock { $0 } }
}

func buildApplication(settings: SimSettings, logger: Logger) -> some ApplicationProtocol {
    let stats = SimStats()
    let tutor = SimulatedTutor()
    let router = Router()
    router.get("/health") { _, _ in "ok" }
    router.get("/sim/stats") { _, _ -> Response in
        jsonResponse(.ok, stats.snapshot)
    }
    router.post("/v1/chat/completions") { request, context -> Response in
        stats.count("chat_completions")
        let body: OpenAIWire.Request
        do {
            body = try await request.decode(as: OpenAIWire.Request.self, context: context)
        } catch {
            return jsonResponse(.badRequest, OpenAIWire.ErrorBody(error: .init(message: "We could not parse the JSON body of your request.", type: "invalid_request_error", code: nil)))
        }
        let conversation = body.messages.map { SimulatedTutor.Message(role: $0.role, content: $0.content ?? "") }
        let directives = SimDirectives(parsing: conversation.last(where: { $0.role == "user" })?.content ?? "")
        try await Task.sleep(for: directives.delayMilliseconds.map { .milliseconds($0) } ?? settings.latency)
        if let status = directives.status, status >= 400 {
            stats.count("faults")
            return jsonResponse(
                HTTPResponse.Status(code: status),
                OpenAIWire.ErrorBody(error: .init(message: "Simulated failure \(status).", type: "server_error", code: nil))
            )
        }
        let text = tutor.reply(to: conversation)
        let promptTokens = conversation.reduce(0) { $0 + OpenAIWire.tokens(in: $1.content) }
        let completionTokens = OpenAIWire.tokens(in: text)
        return jsonResponse(
            .ok,
            OpenAIWire.Response(
                id: "chatcmpl-sim-\(UUID().uuidString.prefix(8))", created: Int(Date().timeIntervalSince1970), model: body.model,
                choices: [.init(message: .init(content: text))],
                usage: .init(prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens)
            )
        )
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "parley-llm-sim"),
        logger: logger
    )
}

private func jsonResponse(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
    return Response(
        status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data))
    )
}
