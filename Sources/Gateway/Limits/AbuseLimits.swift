import Foundation
import Shared

/// The gateway's limits on what one user or one client address may do (docs/protocol.md,
/// "Limits"): turns, session starts (each costs an LLM opening) and cancels per user,
/// new sockets per address, and open sockets per gateway and per user. A refused
/// action stores and publishes nothing.
struct AbuseLimits: Sendable {
    let turns: RateLimiter
    let starts: RateLimiter
    let cancels: RateLimiter
    /// Each `resume` reads up to 500 messages and queues them on the socket.
    let resumes: RateLimiter
    let socketsPerAddress: RateLimiter
    let sockets: SocketAdmission

    init(settings: LimitSettings) {
        turns = RateLimiter(settings.turnsPerUser)
        starts = RateLimiter(settings.startsPerUser)
        cancels = RateLimiter(settings.cancelsPerUser)
        resumes = RateLimiter(settings.resumesPerUser)
        socketsPerAddress = RateLimiter(settings.socketsPerAddress)
        sockets = SocketAdmission(maxSockets: settings.maxSockets, maxPerUser: settings.maxSocketsPerUser)
    }

    /// `rate_limited`, with the seconds to wait, when `limiter` refuses `key`.
    static func check(_ limiter: RateLimiter, _ key: String, what: String) throws(ClientError) {
        guard let wait = limiter.take(key) else { return }
        let seconds = max(1, Int(wait.timeInterval.rounded(.up)))
        throw ClientError(code: .rateLimited, message: "too many \(what); try again in \(seconds) s", retryAfter: seconds)
    }
}

/// The limits' settings, from the environment (a rate of 0 turns a limit off).
struct LimitSettings: Sendable, Equatable {
    var turnsPerUser: RateLimiter.Rule?
    var startsPerUser: RateLimiter.Rule?
    var cancelsPerUser: RateLimiter.Rule?
    var resumesPerUser: RateLimiter.Rule?
    var socketsPerAddress: RateLimiter.Rule?
    var maxSockets: Int
    var maxSocketsPerUser: Int
    var maxRESTTurns: Int

    /// A rate per minute and its burst from two variables; nil when the rate is 0 (off).
    static func rule(
        _ environment: EnvironmentReader,
        _ rate: String,
        default perMinute: Int,
        _ burst: String,
        default burstDefault: Int
    ) throws(ConfigurationError) -> RateLimiter.Rule? {
        let perMinute = try environment.int(rate, default: perMinute, range: 0...1_000_000)
        let burst = try environment.int(burst, default: burstDefault, range: 1...1_000_000)
        return perMinute == 0 ? nil : .init(perMinute: perMinute, burst: burst)
    }

    init(environment: EnvironmentReader) throws(ConfigurationError) {
        func rule(_ rate: String, default perMinute: Int, _ burst: String, default burstDefault: Int) throws(ConfigurationError) -> RateLimiter.Rule?
        {
            try Self.rule(environment, rate, default: perMinute, burst, default: burstDefault)
        }
        turnsPerUser = try rule("RATE_TURNS_PER_MINUTE", default: 120, "RATE_TURNS_BURST", default: 30)
        startsPerUser = try rule("RATE_STARTS_PER_MINUTE", default: 30, "RATE_STARTS_BURST", default: 30)
        cancelsPerUser = try rule("RATE_CANCELS_PER_MINUTE", default: 120, "RATE_CANCELS_BURST", default: 30)
        resumesPerUser = try rule("RATE_RESUMES_PER_MINUTE", default: 60, "RATE_RESUMES_BURST", default: 30)
        socketsPerAddress = try rule("RATE_SOCKETS_PER_MINUTE", default: 600, "RATE_SOCKETS_BURST", default: 300)
        maxSockets = try environment.int("MAX_SOCKETS", default: 20_000, range: 1...1_000_000)
        maxSocketsPerUser = try environment.int("MAX_SOCKETS_PER_USER", default: 50, range: 1...1_000_000)
        maxRESTTurns = try environment.int("MAX_REST_TURNS", default: 2_000, range: 1...1_000_000)
    }
}
