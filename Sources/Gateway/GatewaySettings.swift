import Crypto
import Foundation
import Logging
import ParleySupport
import Shared

/// Everything the gateway reads from the environment, once, at start-up.
struct GatewaySettings: Sendable {
    var gatewayID: String
    var logLevel: Logger.Level
    var host: String
    var port: Int
    /// The operators' listener: `/metrics` and `/health` with each check's detail.
    var internalHost: String
    var internalPort: Int
    var broker: BrokerSettings
    var database: DatabaseSettings
    var authentication: Authenticator.Mode
    /// Largest WebSocket message accepted; a larger one closes the socket (1009).
    var maxFrameBytes: Int
    /// Longest message content accepted; a longer one gets `content_too_long`.
    var maxContentCharacters: Int
    /// Turns of one session that may wait behind the one in progress.
    var maxWaitingTurnsPerSession: Int
    /// How long a published turn may go unanswered before the client is told.
    var replyTimeout: Duration
    /// How long a worker may work on a turn (its envelope's deadline): shorter than
    /// `replyTimeout`, so no worker is still on a turn when the gateway gives up on it.
    var turnLifetime: Duration {
        max(replyTimeout - .seconds(10), replyTimeout / 2)
    }
    /// Frames queued for a socket that does not read before frames are dropped.
    var outboxCapacity: Int
    /// Sessions one socket may use (each holds a binding on this gateway).
    var maxSessionsPerSocket: Int
    /// Rates and caps per user and client address (`AbuseLimits`).
    var limits: LimitSettings
    /// Web origins whose pages may open sockets (`ALLOWED_ORIGINS`); empty: any.
    var allowedOrigins: Set<String> = []
    /// How long a REST request waits for its reply by default (`?wait=` may ask for
    /// up to `replyTimeout`).
    var restWait: Duration
    /// Bearer tokens with the administrator role (every user's logs and sessions).
    var adminKeys: Set<String>
    /// The upstream learning platform; nil: context comes from the topic catalog.
    var platform: PlatformSettings?
    /// Tasks run on NIO's event loops (`EventLoopExecutor`).
    var concurrencyOnEventLoops: Bool
    /// The chat page's accounts (`ACCOUNTS=on`); nil: off.
    var accounts: AccountSettings?
    /// The gRPC API's port (`GRPC_PORT`, on `GATEWAY_HOST`); nil: no gRPC listener.
    var grpcPort: Int?
    /// The WhatsApp channel (the Cloud API, the older bot's endpoints); off by default.
    var whatsapp: WhatsAppSettings

    init(environment: EnvironmentReader) throws(ConfigurationError) {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        gatewayID = environment.string("GATEWAY_ID", default: "\(ProcessInfo.processInfo.hostName)-\(suffix)")
        guard gatewayID.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ConfigurationError(variable: "GATEWAY_ID", problem: "may contain only letters, digits, '-', '_' and '.', got \"\(gatewayID)\"")
        }
        logLevel = try Logger.Level(environment: environment)
        host = environment.string("GATEWAY_HOST", default: "0.0.0.0")
        port = try environment.int("GATEWAY_PORT", default: 8080, range: 0...65535)
        internalHost = environment.string("GATEWAY_INTERNAL_HOST", default: "127.0.0.1")
        internalPort = try environment.int("GATEWAY_INTERNAL_PORT", default: 8081, range: 0...65535)
        guard internalPort != port || port == 0 else {
            throw ConfigurationError(
                variable: "GATEWAY_INTERNAL_PORT",
                problem: "must differ from GATEWAY_PORT (\(port)): metrics and health details are not served on the public port"
            )
        }
        broker = try BrokerSettings(environment: environment)
        database = try DatabaseSettings(environment: environment)
        maxFrameBytes = try environment.int("MAX_FRAME_BYTES", default: 65_536, range: 1024...16_777_216)
        maxContentCharacters = try environment.int("MAX_CONTENT_CHARS", default: 4000, range: 1...1_000_000)
        maxWaitingTurnsPerSession = try environment.int("MAX_PENDING_TURNS_PER_SESSION", default: 16, range: 1...10_000)
        replyTimeout = try environment.seconds("REPLY_TIMEOUT_SECONDS", default: .seconds(180), range: 1...86_400)
        outboxCapacity = try environment.int("SOCKET_OUTBOX_FRAMES", default: 1024, range: 16...1_000_000)
        maxSessionsPerSocket = try environment.int("MAX_SESSIONS_PER_SOCKET", default: 16, range: 1...10_000)
        limits = try LimitSettings(environment: environment)
        restWait = try environment.seconds("REST_WAIT_SECONDS", default: min(.seconds(30), replyTimeout), range: 1...86_400)
        guard restWait <= replyTimeout else {
            throw ConfigurationError(
                variable: "REST_WAIT_SECONDS",
                problem: "must not exceed REPLY_TIMEOUT_SECONDS (\(replyTimeout.wholeMilliseconds / 1000))"
            )
        }
        adminKeys = Set(
            (environment.string("ADMIN_API_KEYS") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        )
        if let short = adminKeys.first(where: { $0.utf8.count < 16 }) {
            throw ConfigurationError(
                variable: "ADMIN_API_KEYS",
                problem: "holds a key of \(short.utf8.count) characters; administrator keys need at least 16"
            )
        }
        platform = try PlatformSettings(environment: environment)
        concurrencyOnEventLoops = try environment.bool(EventLoopExecutor.variable, default: true)

        allowedOrigins = Set(
            (environment.string("ALLOWED_ORIGINS") ?? "").split(separator: ",").map { Self.normalized(origin: String($0)) }.filter { !$0.isEmpty }
        )
        if try environment.bool("PARLEY_AUTH", default: true) {
            authentication = .on(try Self.tokenRules(environment))
        } else {
            authentication = .off
            // Without tokens, any web page a person visits could open a socket to a
            // reachable gateway as them (a browser sends its cookies' site as Origin).
            guard allowedOrigins.isEmpty == false || Self.isLoopback(host) else {
                throw ConfigurationError(
                    variable: "ALLOWED_ORIGINS",
                    problem:
                        "is not set, with PARLEY_AUTH=off and GATEWAY_HOST=\(host) reachable beyond this machine: list the web origins that may open sockets (e.g. http://localhost:8080), or turn authentication on"
                )
            }
            // A loopback gateway without tokens still must not take sockets from any web
            // page its user visits: by default only its own pages may open them.
            if allowedOrigins.isEmpty { allowedOrigins = ["http://localhost:\(port)", "http://127.0.0.1:\(port)"] }
        }
        accounts = try AccountSettings(environment: environment, authentication: authentication)
        whatsapp = try WhatsAppSettings(environment: environment)
        if environment.string("GRPC_PORT") != nil {
            grpcPort = try environment.int("GRPC_PORT", default: 50051, range: 0...65535)
            guard grpcPort != port || port == 0, grpcPort != internalPort || internalPort == 0 else {
                throw ConfigurationError(variable: "GRPC_PORT", problem: "must differ from GATEWAY_PORT and GATEWAY_INTERNAL_PORT")
            }
        }
    }

    /// The accepted tokens: `API_KEYS`, HS256 with `JWT_SECRET`, RS256/ES256 from the
    /// identity provider at `JWT_JWKS_URL`; at least one of them.
    private static func tokenRules(_ environment: EnvironmentReader) throws(ConfigurationError) -> Authenticator.TokenRules {
        var rules = Authenticator.TokenRules(
            claims: ClaimRules(issuer: environment.string("JWT_ISSUER"), audience: environment.string("JWT_AUDIENCE"))
        )
        rules.apiKeys = try apiKeys(environment.string("API_KEYS"))
        if let short = rules.apiKeys.keys.first(where: { $0.utf8.count < 16 }) {
            throw ConfigurationError(variable: "API_KEYS", problem: "holds a key of \(short.utf8.count) characters; API keys need at least 16")
        }
        if let secret = environment.string("JWT_SECRET") {
            // HS256 with a key shorter than its 256-bit hash is guessable offline.
            guard secret.utf8.count >= 32 else {
                throw ConfigurationError(
                    variable: "JWT_SECRET",
                    problem: "must be at least 32 bytes long (it has \(secret.utf8.count)); e.g. openssl rand -hex 32"
                )
            }
            rules.sharedSecret = SymmetricKey(data: Data(secret.utf8))
        }
        if let url = environment.string("JWT_JWKS_URL") {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw ConfigurationError(
                    variable: "JWT_JWKS_URL",
                    problem: "must be the http(s) URL of the identity provider's key set (JWKS), got \"\(url)\""
                )
            }
            let policy = JWKSKeyCache.Policy(
                refreshAfter: try environment.seconds("JWT_JWKS_REFRESH_SECONDS", default: .seconds(600), range: 10...86_400),
                minRefetchInterval: try environment.seconds("JWT_JWKS_MIN_REFETCH_SECONDS", default: .seconds(30), range: 1...3600)
            )
            // A provider signs tokens for every application it serves: without an
            // audience, any of them would let its holder in here.
            guard rules.claims.audience != nil else {
                throw ConfigurationError(
                    variable: "JWT_AUDIENCE",
                    problem:
                        "must be set with JWT_JWKS_URL: the identity provider signs tokens for other applications too; name this one's audience (its client id)"
                )
            }
            rules.keySet = .init(url: url, policy: policy)
        }
        guard !rules.apiKeys.isEmpty || !rules.algorithms.isEmpty else {
            throw ConfigurationError(
                variable: "JWT_SECRET",
                problem:
                    "is not set and neither is JWT_JWKS_URL or API_KEYS: authentication is on, so set one of them (or PARLEY_AUTH=off for local use)"
            )
        }
        return rules
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Whether a socket whose handshake carries `origin` may open. No `Origin` header:
    /// not a browser (wscat, apps), allowed. With an allow-list, only its origins (or
    /// `*`); without one (authentication on, or a loopback gateway), any.
    func allowsOrigin(_ origin: String?) -> Bool {
        guard let origin, !allowedOrigins.isEmpty else { return true }
        return allowedOrigins.contains("*") || allowedOrigins.contains(Self.normalized(origin: origin))
    }

    /// Origins compare as scheme://host[:port], case-insensitively, without a final `/`.
    static func normalized(origin: String) -> String {
        var text = origin.trimmingCharacters(in: .whitespaces).lowercased()
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// `API_KEYS=key1:user1,key2:user2`.
    static func apiKeys(_ text: String?) throws(ConfigurationError) -> [String: String] {
        guard let text else { return [:] }
        var keys: [String: String] = [:]
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigurationError(variable: "API_KEYS", problem: "must be a comma-separated list of key:user_id pairs")
            }
            guard UserID.isValid(parts[1]) else {
                throw ConfigurationError(variable: "API_KEYS", problem: "names a user id that is not \(UserID.rule)")
            }
            guard !parts[1].hasPrefix(Accounts.userIDPrefix) else {
                throw ConfigurationError(
                    variable: "API_KEYS",
                    problem: "names a user id starting with \"\(Accounts.userIDPrefix)\", which is kept for Parley's accounts"
                )
            }
            if let prefix = UserID.channelPrefix(of: parts[1]) {
                throw ConfigurationError(
                    variable: "API_KEYS",
                    problem: "names a user id starting with \"\(prefix)\", which is kept for the WhatsApp and bot channels"
                )
            }
            keys[parts[0]] = parts[1]
        }
        return keys
    }
}
