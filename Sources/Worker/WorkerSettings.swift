import Foundation
import Logging
import Shared

/// Everything the worker reads from the environment, once, at start-up.
struct WorkerSettings: Sendable {
    var workerID: String
    var logLevel: Logger.Level
    var broker: BrokerSettings
    var database: DatabaseSettings
    /// Turns one worker works on at once (the consumer's prefetch).
    var concurrency: Int
    var maxConversationHistory: Int
    var llm: OpenAIChatClient.Settings
    var systemPrompt: String
    var httpHost: String
    var httpPort: Int
    var retryPause: Duration

    init(environment: EnvironmentReader) throws(ConfigurationError) {
        workerID = environment.string("WORKER_ID", default: "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)")
        logLevel = try Logger.Level(environment: environment)
        broker = try BrokerSettings(environment: environment)
        database = try DatabaseSettings(environment: environment)
        concurrency = try environment.int("WORKER_CONCURRENCY", default: 8, range: 1...1000)
        maxConversationHistory = try environment.int("MAX_CONVERSATION_HISTORY", default: 20, range: 0...1000)
        let provider = environment.string("LLM_PROVIDER", default: "openai").lowercased()
        guard provider == "openai" else {
            throw ConfigurationError(variable: "LLM_PROVIDER", problem: "must be \"openai\" (an OpenAI-compatible server; Gemini comes later), got \"\(provider)\"")
        }
        let baseURL = environment.string("OPENAI_BASE_URL", default: "https://api.openai.com/v1")
        guard let url = URL(string: baseURL), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ConfigurationError(variable: "OPENAI_BASE_URL", problem: "must be an http(s) URL such as https://api.openai.com/v1, got \"\(baseURL)\"")
        }
        llm = OpenAIChatClient.Settings(
            baseURL: baseURL,
            apiKey: try environment.requiredString("OPENAI_API_KEY", why: "the worker needs a key for \(baseURL) (any value for a local server or parley-llm-sim)"),
            model: environment.string("OPENAI_MODEL", default: "gpt-4o-mini"),
            timeout: try environment.seconds("LLM_TIMEOUT_SECONDS", default: .seconds(60), range: 1...600)
        )
        systemPrompt = environment.string("SYSTEM_PROMPT", default: PromptBuilder.defaultSystemPrompt)
        httpHost = environment.string("WORKER_HOST", default: "127.0.0.1")
        httpPort = try environment.int("WORKER_PORT", default: 9100, range: 0...65535)
        retryPause = .milliseconds(try environment.int("TURN_RETRY_PAUSE_MS", default: 2000, range: 0...600_000))
    }
}
