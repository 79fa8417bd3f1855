import Foundation

/// The simulator's configuration, read once from the environment at start.
struct SimSettings: Sendable {
    var host = "127.0.0.1"
    var port = 8090
    var timing = SimTiming()
    /// The share of requests (0…1) that get `fault`.
    var faultRate: Double = 0
    var fault = SimDirectives(status: 503)
    var seed: UInt64 = 1

    init() {}

    /// Reads `LLM_SIM_HOST`, `LLM_SIM_PORT`, `LLM_SIM_TTFT_MS`, `LLM_SIM_TOKENS_PER_SECOND`,
    /// `LLM_SIM_LATENCY_MS`, `LLM_SIM_FAULT_RATE`, `LLM_SIM_FAULT` and `LLM_SIM_SEED`; unset or
    /// empty means the default. A bad value is an error that names the variable.
    init(environment: [String: String]) throws(SimConfigurationError) {
        self.init()
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        func bad(_ name: String, _ expected: String) -> SimConfigurationError {
            SimConfigurationError(message: "\(name) must be \(expected), got \"\(environment[name] ?? "")\"")
        }
        func milliseconds(_ name: String) throws(SimConfigurationError) -> Duration? {
            guard let text = value(name) else { return nil }
            guard let ms = Int(text), (0...SimDirectives.maxMilliseconds).contains(ms) else {
                throw bad(name, "a whole number of milliseconds (0…\(SimDirectives.maxMilliseconds))")
            }
            return .milliseconds(ms)
        }

        host = value("LLM_SIM_HOST") ?? host
        if let text = value("LLM_SIM_PORT") {
            guard let port = Int(text), (0...65535).contains(port) else { throw bad("LLM_SIM_PORT", "a port number") }
            self.port = port
        }
        timing.timeToFirstToken = try milliseconds("LLM_SIM_TTFT_MS") ?? timing.timeToFirstToken
        timing.fixedLatency = try milliseconds("LLM_SIM_LATENCY_MS")
        if let text = value("LLM_SIM_TOKENS_PER_SECOND") {
            guard let tps = Double(text), tps.isFinite, tps >= 0.001 else {
                throw bad("LLM_SIM_TOKENS_PER_SECOND", "a number of tokens per second above 0")
            }
            timing.tokensPerSecond = tps
        }
        if let text = value("LLM_SIM_FAULT_RATE") {
            guard let rate = Double(text), (0...1).contains(rate) else { throw bad("LLM_SIM_FAULT_RATE", "a number from 0 to 1") }
            faultRate = rate
        }
        if let text = value("LLM_SIM_FAULT") {
            do {
                fault = try SimDirectives(validating: text)
            } catch {
                throw SimConfigurationError(message: "LLM_SIM_FAULT: \(error) in \"\(text)\"")
            }
            guard fault.hasFault else {
                throw bad("LLM_SIM_FAULT", "directives with a fault (status, quota, safety, cut or malformed)")
            }
        }
        if let text = value("LLM_SIM_SEED") {
            guard let seed = UInt64(text) else { throw bad("LLM_SIM_SEED", "a whole number (0…2^64-1)") }
            self.seed = seed
        }
    }
}

struct SimConfigurationError: Error, CustomStringConvertible, Equatable {
    var message: String
    var description: String { "configuration error: \(message)" }
}
