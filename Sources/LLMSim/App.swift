import Foundation
import Hummingbird
import Logging

/// `parley-llm-sim`: a local stand-in for an LLM provider that speaks the real
/// OpenAI chat-completions protocol, for tests, benchmarks and the offline demo.
@main
enum LLMSimMain {
    static func main() async throws {
        let environment = ProcessInfo.processInfo.environment
        var settings = SimSettings()
        settings.host = environment["LLM_SIM_HOST"] ?? settings.host
        if let text = environment["LLM_SIM_PORT"] {
            guard let port = Int(text), (0...65535).contains(port) else {
                throw SimConfigurationError(message: "LLM_SIM_PORT must be a port number, got \"\(text)\"")
            }
            settings.port = port
        }
        if let text = environment["LLM_SIM_LATENCY_MS"] {
            guard let milliseconds = Int(text), milliseconds >= 0 else {
                throw SimConfigurationError(message: "LLM_SIM_LATENCY_MS must be a whole number of milliseconds, got \"\(text)\"")
            }
            settings.latency = .milliseconds(milliseconds)
        }
        var logger = Logger(label: "parley-llm-sim")
        logger.logLevel = Logger.Level(rawValue: environment["LOG_LEVEL"] ?? "info") ?? .info
        try await buildApplication(settings: settings, logger: logger).runService()
    }
}

struct SimConfigurationError: Error, CustomStringConvertible {
    var message: String
    var description: String { "configuration error: \(message)" }
}
