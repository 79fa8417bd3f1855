import Foundation
import Logging
import ParleySupport
import Shared

/// Everything the worker reads from the environment, once, at start-up.
struct WorkerSettings: Sendable {
    enum Provider: String, Sendable, CaseIterable {
        case gemini, openai
    }

    var workerID: String
    var logLevel: Logger.Level
    var broker: BrokerSettings
    var database: DatabaseSettings
    /// Turns one worker works on at once (the consumer's prefetch).
    var concurrency: Int
    var maxConversationHistory: Int
    /// The providers in order: `LLM_PROVIDER`, then `LLM_FALLBACK`.
    var providers: [Provider]
    var openAI: ProviderSettings?
    var gemini: ProviderSettings?
    var streaming: Bool
    var retry: RetryPolicy
    var attemptTimeout: Duration
    var idleTimeout: Duration
    var breakerFailures: Int
    var breakerCooldown: Duration
    var coalescer: DeltaCoalescer
    var deltasPerSecond: Int
    var systemPrompt: String
    var completionMarker: String
    var httpHost: String
    var httpPort: Int
    var retryPause: Duration
    /// The upstream learning platform; nil when `PLATFORM_API_URL` is not set.
    var platform: PlatformSettings?
    /// The topic catalog of `TOPICS_FILE`, written to the `topics` table at start-up.
    var topics: [CatalogTopic]?
    var outboxPollInterval: Duration
    /// How long a SIGTERM waits for the turns in flight before cancelling them.
    var shutdownTimeout: Duration
    /// Tasks run on NIO's event loops (`EventLoopExecutor`).
    var concurrencyOnEventLoops: Bool

    init(environment: EnvironmentReader) throws(ConfigurationError) {
        workerID = environment.string("WORKER_ID", default: "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)")
        guard workerID.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ConfigurationError(variable: "WORKER_ID", problem: "may contain only letters, digits, '-', '_' and '.', got \"\(workerID)\"")
        }
        logLevel = try Logger.Level(environment: environment)
        broker = try BrokerSettings(environment: environment)
        database = try DatabaseSettings(environment: environment)
        concurrency = try environment.int("WORKER_CONCURRENCY", default: 256, range: 1...10_000)
        maxConversationHistory = try environment.int("MAX_CONVERSATION_HISTORY", default: 20, range: 0...1000)

        let primary = try Self.provider(environment.string("LLM_PROVIDER", default: "openai"), variable: "LLM_PROVIDER")
        var providers = [primary]
        for name in (environment.string("LLM_FALLBACK") ?? "").split(separator: ",") {
            let provider = try Self.provider(String(name), variable: "LLM_FALLBACK")
            if !providers.contains(provider) { providers.append(provider) }
        }
        self.providers = providers
        if providers.contains(.openai) {
            openAI = ProviderSettings(
                baseURL: try Self.url(environment, "OPENAI_BASE_URL", default: "https://api.openai.com/v1"),
                apiKey: try environment.requiredString(
                    "OPENAI_API_KEY",
                    why: "OpenAI is in the provider chain (any value for a local server or parley-llm-sim)"
                ),
                model: environment.string("OPENAI_MODEL", default: "gpt-4o-mini"),
                temperature: try Self.decimal(environment, "OPENAI_TEMPERATURE", range: 0...2),
                maxOutputTokens: try Self.optionalInt(environment, "OPENAI_MAX_OUTPUT_TOKENS", range: 1...1_000_000)
            )
        }
        if providers.contains(.gemini) {
            gemini = ProviderSettings(
                baseURL: try Self.url(environment, "GEMINI_BASE_URL", default: "https://generativelanguage.googleapis.com/v1beta"),
                apiKey: try environment.requiredString("GEMINI_API_KEY", why: "Gemini is in the provider chain"),
                model: environment.string("GEMINI_MODEL", default: "gemini-2.5-flash"),
                temperature: try Self.decimal(environment, "GEMINI_TEMPERATURE", range: 0...2),
                maxOutputTokens: try Self.optionalInt(environment, "GEMINI_MAX_OUTPUT_TOKENS", range: 1...1_000_000)
            )
        }
        streaming = try environment.bool("LLM_STREAM", default: true)
        retry = RetryPolicy(
            maxAttempts: try environment.int("LLM_MAX_ATTEMPTS", default: 3, range: 1...20),
            baseDelay: .milliseconds(try environment.int("LLM_RETRY_BASE_MS", default: 500, range: 1...60_000)),
            maxDelay: .milliseconds(try environment.int("LLM_RETRY_MAX_MS", default: 8000, range: 1...600_000)),
            longestHintToWaitFor: try environment.seconds("LLM_MAX_RETRY_AFTER_SECONDS", default: .seconds(20), range: 0...3600)
        )
        attemptTimeout = try environment.seconds("LLM_ATTEMPT_TIMEOUT_SECONDS", default: .seconds(60), range: 1...3600)
        idleTimeout = try environment.seconds("LLM_IDLE_TIMEOUT_SECONDS", default: .seconds(20), range: 1...3600)
        breakerFailures = try environment.int("LLM_BREAKER_FAILURES", default: 5, range: 1...1000)
        breakerCooldown = try environment.seconds("LLM_BREAKER_COOLDOWN_SECONDS", default: .seconds(30), range: 1...86_400)
        coalescer = DeltaCoalescer(
            maxCharacters: try environment.int("DELTA_MAX_CHARS", default: 1024, range: 1...100_000),
            maxDelay: .milliseconds(try environment.int("DELTA_MAX_DELAY_MS", default: 30, range: 0...10_000))
        )
        deltasPerSecond = try environment.int("DELTA_BUDGET_PER_SECOND", default: 2000, range: 0...1_000_000)
        systemPrompt = environment.string("SYSTEM_PROMPT", default: PromptBuilder.defaultSystemPrompt)
        completionMarker = environment.string("COMPLETION_MARKER", default: PromptBuilder.defaultCompletionMarker)
        httpHost = environment.string("WORKER_HOST", default: "127.0.0.1")
        httpPort = try environment.int("WORKER_PORT", default: 9100, range: 0...65535)
        retryPause = .milliseconds(try environment.int("TURN_RETRY_PAUSE_MS", default: 2000, range: 0...600_000))
        platform = try PlatformSettings(environment: environment)
        topics = try environment.string("TOPICS_FILE").map { path throws(ConfigurationError) in try TopicCatalogFile.load(path: path) }
        outboxPollInterval = .milliseconds(try environment.int("OUTBOX_POLL_MS", default: 1000, range: 10...600_000))
        shutdownTimeout = try environment.seconds("SHUTDOWN_TIMEOUT_SECONDS", default: .seconds(25), range: 1...3600)
        concurrencyOnEventLoops = try environment.bool(EventLoopExecutor.variable, default: true)
    }

    private static func provider(_ text: String, variable: String) throws(ConfigurationError) -> Provider {
        let name = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let provider = Provider(rawValue: name) else {
            throw ConfigurationError(variable: variable, problem: "must name gemini or openai (comma-separated for LLM_FALLBACK), got \"\(text)\"")
        }
        return provider
    }

    private static func url(_ environment: EnvironmentReader, _ variable: String, default fallback: String) throws(ConfigurationError) -> String {
        let text = environment.string(variable, default: fallback)
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ConfigurationError(variable: variable, problem: "must be an http(s) URL such as \(fallback), got \"\(text)\"")
        }
        return text
    }

    private static func optionalInt(_ environment: EnvironmentReader, _ variable: String, range: ClosedRange<Int>) throws(ConfigurationError) -> Int?
    {
        guard environment.string(variable) != nil else { return nil }
        return try environment.int(variable, default: range.lowerBound, range: range)
    }

    private static func decimal(
        _ environment: EnvironmentReader,
        _ variable: String,
        range: ClosedRange<Double>
    ) throws(ConfigurationError) -> Double? {
        guard let text = environment.string(variable) else { return nil }
        guard let value = Double(text), range.contains(value) else {
            throw ConfigurationError(variable: variable, problem: "must be a number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
        }
        return value
    }

    /// The chain's providers and their models, as the metrics label them.
    var configuredModels: [(provider: String, model: String)] {
        providers.compactMap { provider in
            switch provider {
            case .openai: openAI.map { ("openai", $0.model) }
            case .gemini: gemini.map { ("gemini", $0.model) }
            }
        }
    }

    /// Whether OpenAI's base URL points at the compose simulator while a real-looking
    /// key is set: the key would go to the simulator (compose defaults the URL to it).
    var sendsARealKeyToTheSimulator: Bool {
        guard let openAI else { return false }
        return openAI.baseURL.contains("llm-sim") && openAI.apiKey != "sim"
    }

    /// For the start-up log line: the chain and its models, no secrets.
    var providerSummary: String {
        providers.map { provider in
            switch provider {
            case .openai: "openai(\(openAI?.model ?? "?") at \(openAI?.baseURL ?? "?"))"
            case .gemini: "gemini(\(gemini?.model ?? "?") at \(gemini?.baseURL ?? "?"))"
            }
        }.joined(separator: " → ")
    }
}
