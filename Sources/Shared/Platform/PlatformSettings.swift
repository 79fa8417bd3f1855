import Foundation
import ParleySupport

/// How to reach the upstream learning platform: `PLATFORM_API_URL` (unset: no
/// platform — context comes from the topic catalog and no completion is sent),
/// `PLATFORM_API_KEY` (sent as a bearer token), and the retry schedule.
public struct PlatformSettings: Sendable {
    public var baseURL: String
    public var apiKey: String?
    /// Attempts of one context request before the start of a session fails.
    public var maxAttempts: Int
    public var retryBase: Duration
    public var retryMaximum: Duration
    /// Time limit of one HTTP request.
    public var requestTimeout: Duration

    public init(
        baseURL: String,
        apiKey: String? = nil,
        maxAttempts: Int = 5,
        retryBase: Duration = .seconds(1),
        retryMaximum: Duration = .seconds(60),
        requestTimeout: Duration = .seconds(10)
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
        self.maxAttempts = maxAttempts
        self.retryBase = retryBase
        self.retryMaximum = retryMaximum
        self.requestTimeout = requestTimeout
    }

    /// Nil when `PLATFORM_API_URL` is not set.
    public init?(environment: EnvironmentReader) throws(ConfigurationError) {
        guard let url = environment.string("PLATFORM_API_URL") else { return nil }
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw ConfigurationError(variable: "PLATFORM_API_URL", problem: "must be an http(s) URL such as http://platform:8080, got \"\(url)\"")
        }
        let base = try environment.int("PLATFORM_RETRY_BASE_MS", default: 1000, range: 1...600_000)
        let maximum = try environment.int("PLATFORM_RETRY_MAX_MS", default: 60_000, range: 1...3_600_000)
        guard maximum >= base else {
            throw ConfigurationError(variable: "PLATFORM_RETRY_MAX_MS", problem: "must be at least PLATFORM_RETRY_BASE_MS (\(base)), got \(maximum)")
        }
        self.init(
            baseURL: url,
            apiKey: environment.string("PLATFORM_API_KEY"),
            maxAttempts: try environment.int("PLATFORM_MAX_ATTEMPTS", default: 5, range: 1...100),
            retryBase: .milliseconds(base),
            retryMaximum: .milliseconds(maximum),
            requestTimeout: try environment.seconds("PLATFORM_TIMEOUT_SECONDS", default: .seconds(10), range: 1...600)
        )
    }

    /// The delay before retry number `attempt` (1-based): base · 2^(attempt−1), at most
    /// the maximum, with equal jitter (between half and all of it).
    public func retryDelay(afterAttempt attempt: Int) -> Duration {
        Backoff(initial: retryBase, maximum: retryMaximum).delay(afterAttempt: attempt)
    }
}
