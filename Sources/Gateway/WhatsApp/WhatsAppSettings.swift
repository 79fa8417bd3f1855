import Crypto
import Foundation
import ParleySupport
import Shared

/// The WhatsApp channel: the Cloud API's webhook and the relay that answers through
/// the Graph API (`cloud`, on when `WHATSAPP_APP_SECRET` is set), and the older bot's
/// `POST /whatsapp` and `POST /chat` (on when `WHATSAPP_API_KEYS` is set).
struct WhatsAppSettings: Sendable {
    struct CloudAPI: Sendable {
        /// What Meta's dashboard was given as the webhook's verify token.
        var verifyToken: String
        /// The app secret: the key of `X-Hub-Signature-256`.
        var appSecret: SymmetricKey
        /// The system user's access token the Graph API takes.
        var accessToken: String
        /// `https://graph.facebook.com/v21.0`, or the tests' fake.
        var graphURL: String
        var requestTimeout: Duration
        /// Largest voice note fetched and transcribed.
        var maxAudioBytes: Int
        /// Messages worked on at once by this gateway (each of a different sender).
        var concurrency: Int
        var retryBase: Duration
        var retryMaximum: Duration
        /// How long a relay's claim on a message lasts unrenewed: after a gateway's
        /// crash, its messages wait this long for another gateway.
        var claimLease: Duration
        /// Where voice notes are transcribed; nil: they are answered with a request to write.
        var transcription: TranscriptionSettings?

        /// The delay before retry number `attempt` (1-based): base · 2^(attempt−1), at
        /// most the maximum, with equal jitter.
        func retryDelay(afterAttempt attempt: Int) -> Duration {
            Backoff(initial: retryBase, maximum: retryMaximum).delay(afterAttempt: attempt)
        }
    }

    /// An OpenAI-compatible `/audio/transcriptions`.
    struct TranscriptionSettings: Sendable {
        var baseURL: String
        var apiKey: String?
        var model: String
    }

    var cloud: CloudAPI?
    /// Bearer keys of the older bot's endpoints; empty: those endpoints are off.
    var botKeys: Set<String>
    /// A sender's session is kept while it is active and was used within this time;
    /// after it, their next message starts a new one.
    var sessionIdle: Duration

    init(environment: EnvironmentReader) throws(ConfigurationError) {
        botKeys = Set(
            (environment.string("WHATSAPP_API_KEYS") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty
            }
        )
        if let short = botKeys.first(where: { $0.utf8.count < 16 }) {
            throw ConfigurationError(variable: "WHATSAPP_API_KEYS", problem: "holds a key of \(short.utf8.count) characters; keys need at least 16")
        }
        sessionIdle = .seconds(60 * (try environment.int("WHATSAPP_SESSION_IDLE_MINUTES", default: 1440, range: 1...525_600)))
        cloud = try Self.cloudAPI(environment)
    }

    var isEnabled: Bool { cloud != nil || !botKeys.isEmpty }

    /// The Cloud API needs its three secrets together: one without the others would
    /// take messages it cannot check or cannot answer.
    private static func cloudAPI(_ environment: EnvironmentReader) throws(ConfigurationError) -> CloudAPI? {
        let names = ["WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "WHATSAPP_ACCESS_TOKEN"]
        let values = names.map { environment.string($0) }
        guard values.contains(where: { $0 != nil }) else { return nil }
        if let missing = zip(names, values).first(where: { $0.1 == nil })?.0 {
            throw ConfigurationError(
                variable: missing,
                problem: "is not set while \(names.filter { $0 != missing }.joined(separator: " or ")) is: the WhatsApp Cloud API needs all three"
            )
        }
        let (secret, verifyToken, accessToken) = (values[0]!, values[1]!, values[2]!)
        let graphURL = environment.string("WHATSAPP_GRAPH_URL", default: "https://graph.facebook.com/v21.0")
        guard let parsed = URL(string: graphURL), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw ConfigurationError(
                variable: "WHATSAPP_GRAPH_URL",
                problem: "must be an http(s) URL such as https://graph.facebook.com/v21.0, got \"\(graphURL)\""
            )
        }
        let base = try environment.int("WHATSAPP_RETRY_BASE_MS", default: 1000, range: 1...600_000)
        let maximum = try environment.int("WHATSAPP_RETRY_MAX_MS", default: 60_000, range: 1...86_400_000)
        guard maximum >= base else {
            throw ConfigurationError(variable: "WHATSAPP_RETRY_MAX_MS", problem: "must be at least WHATSAPP_RETRY_BASE_MS (\(base)), got \(maximum)")
        }
        return CloudAPI(
            verifyToken: verifyToken,
            appSecret: SymmetricKey(data: Data(secret.utf8)),
            accessToken: accessToken,
            graphURL: graphURL.hasSuffix("/") ? String(graphURL.dropLast()) : graphURL,
            requestTimeout: try environment.seconds("WHATSAPP_TIMEOUT_SECONDS", default: .seconds(15), range: 1...600),
            maxAudioBytes: try environment.int("WHATSAPP_MAX_AUDIO_BYTES", default: 16 * 1024 * 1024, range: 1024...104_857_600),
            concurrency: try environment.int("WHATSAPP_CONCURRENCY", default: 32, range: 1...10_000),
            retryBase: .milliseconds(base),
            retryMaximum: .milliseconds(maximum),
            claimLease: try environment.seconds("WHATSAPP_CLAIM_SECONDS", default: .seconds(60), range: 3...3600),
            transcription: try transcription(environment)
        )
    }

    /// `TRANSCRIPTION_URL` (else `OPENAI_BASE_URL`, else OpenAI's when an API key is
    /// given), `TRANSCRIPTION_API_KEY` (else `OPENAI_API_KEY`), `TRANSCRIPTION_MODEL`.
    private static func transcription(_ environment: EnvironmentReader) throws(ConfigurationError) -> TranscriptionSettings? {
        let apiKey = environment.string("TRANSCRIPTION_API_KEY") ?? environment.string("OPENAI_API_KEY")
        let variable = environment.string("TRANSCRIPTION_URL") != nil ? "TRANSCRIPTION_URL" : "OPENAI_BASE_URL"
        guard let url = environment.string(variable) ?? apiKey.map({ _ in "https://api.openai.com/v1" }) else { return nil }
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw ConfigurationError(variable: variable, problem: "must be an http(s) URL such as https://api.openai.com/v1, got \"\(url)\"")
        }
        return TranscriptionSettings(
            baseURL: url.hasSuffix("/") ? String(url.dropLast()) : url,
            apiKey: apiKey,
            model: environment.string("TRANSCRIPTION_MODEL", default: "whisper-1")
        )
    }
}
