import Foundation
import Hummingbird
import Logging
import ParleySupport
import ServiceLifecycle

/// `parley-llm-sim`: a local stand-in for an LLM provider, for tests, benchmarks and
/// the offline demo. It speaks OpenAI's chat completions and Google Gemini's
/// generateContent, streaming and not, as the real services do on the wire, and plays
/// a deterministic tutor (``SimulatedTutor``).
///
/// Endpoints:
/// - `POST /v1/chat/completions`: OpenAI (`"stream": true` for SSE, `stream_options.include_usage`;
///   `Authorization: Bearer …` required; `x-ratelimit-*` headers on every answer).
/// - `POST /v1beta/models/{model}:generateContent` and `…:streamGenerateContent[?alt=sse]`
///   (also under `/v1/`): Gemini (`x-goog-api-key` header or `?key=` required).
/// - `GET /sim/stats`: requests served, per kind (``SimStats``); `POST /sim/reset` zeroes them.
/// - `GET /health`.
///
/// Timing (``SimTiming``): the first token after `LLM_SIM_TTFT_MS` (150), then
/// `LLM_SIM_TOKENS_PER_SECOND` (80) tokens a second; `LLM_SIM_LATENCY_MS`, when set, fixes
/// the time of non-streaming answers. Faults (``SimDirectives``): per request with a
/// `[sim:key=value,…]` marker in the last user message or the `x-sim` header, or for a
/// share `LLM_SIM_FAULT_RATE` of requests with `LLM_SIM_FAULT`, drawn from `LLM_SIM_SEED`.
/// `LLM_SIM_HOST` / `LLM_SIM_PORT` (127.0.0.1 / 8090) say where it listens.
@main
enum LLMSimMain {
    static func main() async {
        // The simulator shares the machine's cores with what it measures: it runs its
        // tasks on its event loops, as the servers do, to cost as little as it can.
        EventLoopExecutor.install()
        let environment = ProcessInfo.processInfo.environment
        var logger = Logger(label: "parley-llm-sim")
        logger.logLevel = Logger.Level(rawValue: environment["LOG_LEVEL"] ?? "info") ?? .info
        let settings: SimSettings
        do {
            settings = try SimSettings(environment: environment)
        } catch {
            logger.critical("\(error)")
            exit(1)
        }
        logger.info(
            "simulator configured",
            metadata: [
                "ttft": "\(settings.timing.timeToFirstToken)", "tokens_per_second": "\(settings.timing.tokensPerSecond)",
                "fixed_latency": "\(settings.timing.fixedLatency.map { "\($0)" } ?? "none")",
                "fault_rate": "\(settings.faultRate)", "seed": "\(settings.seed)",
            ]
        )
        // A stand-in: on SIGTERM it may drop connections after a short grace.
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: buildApplication(settings: settings, logger: logger))],
            logger: logger
        )
        configuration.gracefulShutdownSignals = [.sigterm, .sigint]
        configuration.maximumGracefulShutdownDuration = .seconds(2)
        do {
            try await ServiceGroup(configuration: configuration).run()
            logger.info("stopped")
        } catch {
            logger.critical("stopped on an error", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
