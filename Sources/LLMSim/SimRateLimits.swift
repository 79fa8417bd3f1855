/// The request and token budgets behind OpenAI's `x-ratelimit-*` headers: two token
/// buckets that refill their whole capacity over a minute (so one request comes back
/// after 60 s / limit, which is why OpenAI reports resets like `6ms`).
struct SimRateLimits: Sendable {
    var requestLimit = 10_000
    var tokenLimit = 2_000_000
    private var requestLevel: Double
    private var tokenLevel: Double
    private var last: ContinuousClock.Instant?

    struct Snapshot: Sendable, Equatable {
        var limitRequests: Int
        var remainingRequests: Int
        var resetRequests: Duration
        var limitTokens: Int
        var remainingTokens: Int
        var resetTokens: Duration

        /// The six `x-ratelimit-*` headers, by name.
        var headers: [(String, String)] {
            [
                ("x-ratelimit-limit-requests", String(limitRequests)),
                ("x-ratelimit-remaining-requests", String(remainingRequests)),
                ("x-ratelimit-reset-requests", SimRateLimits.format(resetRequests)),
                ("x-ratelimit-limit-tokens", String(limitTokens)),
                ("x-ratelimit-remaining-tokens", String(remainingTokens)),
                ("x-ratelimit-reset-tokens", SimRateLimits.format(resetTokens)),
            ]
        }
    }

    init() {
        requestLevel = Double(requestLimit)
        tokenLevel = Double(tokenLimit)
    }

    /// Takes one request and `tokens` tokens from the budgets at `now`.
    mutating func consume(tokens: Int, now: ContinuousClock.Instant) -> Snapshot {
        if let last {
            let elapsed = (now - last) / .seconds(60)
            requestLevel = min(Double(requestLimit), requestLevel + elapsed * Double(requestLimit))
            tokenLevel = min(Double(tokenLimit), tokenLevel + elapsed * Double(tokenLimit))
        }
        last = now
        requestLevel = max(0, requestLevel - 1)
        tokenLevel = max(0, tokenLevel - Double(tokens))
        return Snapshot(
            limitRequests: requestLimit,
            remainingRequests: Int(requestLevel.rounded(.down)),
            resetRequests: .seconds((Double(requestLimit) - requestLevel) * 60 / Double(requestLimit)),
            limitTokens: tokenLimit,
            remainingTokens: Int(tokenLevel.rounded(.down)),
            resetTokens: .seconds((Double(tokenLimit) - tokenLevel) * 60 / Double(tokenLimit))
        )
    }

    /// Go-style durations as OpenAI writes them: `0s`, `6ms`, `1s`, `1.5s`, `6m0s`.
    static func format(_ duration: Duration) -> String {
        let milliseconds = Int((duration / .milliseconds(1)).rounded())
        if milliseconds <= 0 { return "0s" }
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        let minutes = milliseconds / 60_000
        let rest = milliseconds % 60_000
        let seconds = rest % 1000 == 0 ? String(rest / 1000) : trimmed(Double(rest) / 1000)
        return minutes > 0 ? "\(minutes)m\(seconds)s" : "\(seconds)s"
    }

    private static func trimmed(_ value: Double) -> String {
        var text = String(format3: value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}

extension String {
    /// `value` with three decimals, without Foundation's `String(format:)`.
    fileprivate init(format3 value: Double) {
        let thousandths = Int((value * 1000).rounded())
        let fraction = String(thousandths % 1000)
        self = "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
