import Hummingbird
import Logging

/// The simulator's routes: both providers' model endpoints, speech to text, the counters and `/health`.
func buildApplication(settings: SimSettings, logger: Logger) -> some ApplicationProtocol {
    let engine = SimEngine(settings: settings)
    let openAI = OpenAIEndpoint(engine: engine)
    let gemini = GeminiEndpoint(engine: engine)
    let router = Router()
    router.get("/health") { _, _ in "ok" }
    router.get("/sim/stats") { _, _ -> Response in
        SimHTTP.json(engine.stats.snapshot)
    }
    // When the first answer text of the newest stream whose last user message
    // contains `?contains=` was written, in microseconds since 1970 (for benchmarks).
    router.get("/sim/trace") { request, _ -> Response in
        guard let needle = request.uri.queryParameters["contains"].map(String.init), !needle.isEmpty,
            let date = engine.stats.firstText(containing: needle)
        else {
            return SimHTTP.json(.object([.init(key: "error", value: .string("no stream with that text"))]), status: 404)
        }
        return SimHTTP.json(.object([.init(key: "first_text_at_us", value: .int(Int((date.timeIntervalSince1970 * 1_000_000).rounded())))]))
    }
    router.post("/sim/reset") { _, context -> Response in
        engine.reset()
        context.logger.info("counters reset")
        return SimHTTP.json(engine.stats.snapshot)
    }
    router.post("/v1/chat/completions") { request, context in
        try await openAI.respond(to: request, context: context)
    }
    router.post("/v1/audio/transcriptions") { request, _ in
        try await TranscriptionEndpoint().respond(to: request)
    }
    for version in ["v1beta", "v1"] {
        router.post("/\(version)/models/{target}") { request, context in
            try await gemini.respond(to: request, context: context)
        }
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "parley-llm-sim"),
        logger: logger
    )
}
