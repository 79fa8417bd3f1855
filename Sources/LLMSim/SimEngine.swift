import Logging
import Synchronization

/// One model request, whatever protocol it came in with.
struct SimExchange: Sendable {
    var provider: SimProvider
    var stream: Bool
    /// Roles `system`, `user`, `assistant`.
    var conversation: [SimulatedTutor.Message]
    /// `max_tokens` / `maxOutputTokens`, when the request sets it.
    var maxOutputTokens: Int?
    /// The `x-sim` header.
    var header: String?
}

/// What the simulator will do with one request, before any protocol is spoken.
struct SimTurn: Sendable {
    enum Outcome: Sendable, Equatable {
        case reply
        /// An error with this status; `retryAfter` seconds when the provider should hint it.
        case error(status: Int, retryAfter: Int?)
        /// Out of quota (OpenAI `insufficient_quota`), a 429 that retrying does not cure.
        case quota
        /// The prompt was blocked for safety.
        case blocked
    }

    var outcome: Outcome
    var directives: SimDirectives
    var pacing: SimPacing
    var promptTokens: Int
    /// The reply, token by token.
    var tokens: [String]
    /// Whether `maxOutputTokens` cut the reply short.
    var truncated: Bool

    var text: String { tokens.joined() }

    /// Logs the request: at `info` when it gets a fault, at `debug` otherwise.
    func log(to logger: Logger, request: String, model: String, stream: Bool) {
        let metadata: Logger.Metadata = [
            "model": "\(model)", "stream": "\(stream)", "directives": "\(directives)", "tokens": "\(tokens.count)",
        ]
        if directives.hasFault {
            logger.info("\(request) with a simulated fault", metadata: metadata)
        } else {
            logger.debug("\(request)", metadata: metadata)
        }
    }

    /// When an error is sent: at once, unless the request asked for a delay or a slow first token.
    var errorDelay: Duration {
        directives.delayMilliseconds != nil || directives.ttftMilliseconds != nil ? pacing.firstToken : .zero
    }
}

/// The provider-neutral core: decides faults, timing and the reply of each request,
/// and keeps the counters, the `fail_first` memory and the rate-limit budgets.
final class SimEngine: Sendable {
    let settings: SimSettings
    let stats = SimStats()
    private let tutor = SimulatedTutor()
    private let planner: Mutex<SimFaultPlanner>
    private let rateLimits = Mutex(SimRateLimits())

    init(settings: SimSettings) {
        self.settings = settings
        planner = Mutex(SimFaultPlanner(rate: settings.faultRate, fault: settings.fault, seed: settings.seed))
    }

    func prepare(_ exchange: SimExchange) -> SimTurn {
        let lastUser = exchange.conversation.last(where: { $0.role == "user" })?.content ?? ""
        let marker = SimDirectives(parsing: lastUser)
        let header = exchange.header.map { SimDirectives(list: $0) } ?? SimDirectives()
        let key = SimFaultPlanner.conversationKey(provider: exchange.provider, conversation: exchange.conversation)
        let directives = planner.withLock {
            $0.resolve(header: header, marker: marker, provider: exchange.provider, key: key)
        }
        if directives.hasFault { stats.countFault() }

        var tokens = SimTokenizer.tokens(of: tutor.reply(to: exchange.conversation))
        if let count = directives.tokens { tokens = SimTokenizer.exactly(count, from: tokens) }
        var truncated = false
        if let limit = exchange.maxOutputTokens, limit > 0, tokens.count > limit {
            tokens = Array(tokens.prefix(limit))
            truncated = true
        }
        return SimTurn(
            outcome: Self.outcome(of: directives),
            directives: directives,
            pacing: settings.timing.pacing(for: directives),
            promptTokens: exchange.conversation.reduce(0) { $0 + SimTokenizer.count($1.content) },
            tokens: tokens,
            truncated: truncated
        )
    }

    /// Takes one request and its tokens from the rate-limit budgets.
    func consumeRateLimits(tokens: Int) -> SimRateLimits.Snapshot {
        rateLimits.withLock { $0.consume(tokens: tokens, now: .now) }
    }

    /// Zeroes the counters, forgets `fail_first` attempts, restarts the fault draw from
    /// the seed and refills the rate-limit budgets.
    func reset() {
        stats.reset()
        planner.withLock { $0.reset() }
        rateLimits.withLock { $0 = SimRateLimits() }
    }

    static func outcome(of directives: SimDirectives) -> SimTurn.Outcome {
        if directives.quota { return .quota }
        if let status = directives.status {
            return .error(status: status, retryAfter: directives.retryAfterSeconds ?? (status == 429 ? 1 : nil))
        }
        if directives.safety { return .blocked }
        return .reply
    }
}
