import Foundation

/// What one request asks of the simulator: faults, timing and reply length.
///
/// A request steers the simulator with a marker in its last user message,
/// `[sim:status=503]` or `[sim:ttft=2000,tokens=300]`, or with the header
/// `x-sim: status=429,retry_after=2` (same `key=value,…` text). Keys:
///
/// | key | effect |
/// |---|---|
/// | `delay=<ms>` | non-streaming: answer after exactly this long; streaming: first token after it (unless `ttft`) |
/// | `status=<code>` | fail with this status (400…599) in the provider's error format |
/// | `retry_after=<s>` | seconds in `Retry-After` / `RetryInfo` (default 1 for 429) |
/// | `quota` | OpenAI: 429 `insufficient_quota`; Gemini: 429 `RESOURCE_EXHAUSTED` without `RetryInfo` |
/// | `safety` | Gemini: prompt blocked (`promptFeedback.blockReason`); OpenAI: `finish_reason` `content_filter` |
/// | `ttft=<ms>` | time to first token |
/// | `tps=<n>` | tokens per second |
/// | `tokens=<n>` | the reply is exactly n tokens (the tutor's reply cut or padded with filler words) |
/// | `cut=<k>` | stream: connection closed after k tokens; non-stream: closed without a body |
/// | `malformed=<k>` | stream: one event that is not JSON after k tokens; non-stream: a truncated JSON body |
/// | `fail_first=<n>` | the faults apply only to the first n attempts of the same conversation (same provider and messages) |
/// | `only=openai\|gemini` | the faults apply only to that provider |
///
/// The header overrides the configured fault (`LLM_SIM_FAULT`), and the marker overrides
/// the header, key by key. Markers and the header are lenient (a bad pair is ignored);
/// the configured `LLM_SIM_FAULT` is parsed strictly (see ``init(validating:)``).
struct SimDirectives: Sendable, Equatable {
    var delayMilliseconds: Int?
    var status: Int?
    var retryAfterSeconds: Int?
    var quota = false
    var safety = false
    var ttftMilliseconds: Int?
    var tokensPerSecond: Double?
    var tokens: Int?
    var cutAfter: Int?
    var malformedAfter: Int?
    var failFirst: Int?
    var only: SimProvider?

    init(
        delayMilliseconds: Int? = nil,
        status: Int? = nil,
        retryAfterSeconds: Int? = nil,
        quota: Bool = false,
        safety: Bool = false,
        ttftMilliseconds: Int? = nil,
        tokensPerSecond: Double? = nil,
        tokens: Int? = nil,
        cutAfter: Int? = nil,
        malformedAfter: Int? = nil,
        failFirst: Int? = nil,
        only: SimProvider? = nil
    ) {
        self.delayMilliseconds = delayMilliseconds
        self.status = status
        self.retryAfterSeconds = retryAfterSeconds
        self.quota = quota
        self.safety = safety
        self.ttftMilliseconds = ttftMilliseconds
        self.tokensPerSecond = tokensPerSecond
        self.tokens = tokens
        self.cutAfter = cutAfter
        self.malformedAfter = malformedAfter
        self.failFirst = failFirst
        self.only = only
    }

    /// The directives of every `[sim:…]` marker in `text`, later markers winning.
    init(parsing text: String) {
        self.init()
        var rest = Substring(text)
        while let start = rest.range(of: "[sim:") {
            guard let end = rest[start.upperBound...].firstIndex(of: "]") else { break }
            _ = apply(list: rest[start.upperBound..<end])
            rest = rest[rest.index(after: end)...]
        }
    }

    /// The directives of a bare `key=value,…` list (the `x-sim` header); bad pairs are ignored.
    /// A list wrapped as a marker (`[sim:…]`) is accepted too.
    init(list: String) {
        self.init()
        _ = apply(list: Self.unwrapped(list))
    }

    /// The directives of a `key=value,…` list, or an error naming the first bad pair.
    init(validating list: String) throws(DirectiveError) {
        self.init()
        if let bad = apply(list: Self.unwrapped(list)).first { throw DirectiveError(pair: bad) }
    }

    struct DirectiveError: Error, Equatable, CustomStringConvertible {
        var pair: String
        var description: String { "unknown directive or bad value \"\(pair)\"" }
    }

    /// Whether these directives inject a fault (rather than only shape timing or length).
    var hasFault: Bool {
        status != nil || quota || safety || cutAfter != nil || malformedAfter != nil
    }

    /// The same timing and length, without faults.
    var withoutFaults: SimDirectives {
        var copy = self
        copy.status = nil
        copy.quota = false
        copy.safety = false
        copy.cutAfter = nil
        copy.malformedAfter = nil
        return copy
    }

    /// These directives with every key that `other` sets taken from `other`.
    func overridden(by other: SimDirectives) -> SimDirectives {
        var merged = self
        merged.delayMilliseconds = other.delayMilliseconds ?? delayMilliseconds
        merged.status = other.status ?? status
        merged.retryAfterSeconds = other.retryAfterSeconds ?? retryAfterSeconds
        merged.quota = other.quota || quota
        merged.safety = other.safety || safety
        merged.ttftMilliseconds = other.ttftMilliseconds ?? ttftMilliseconds
        merged.tokensPerSecond = other.tokensPerSecond ?? tokensPerSecond
        merged.tokens = other.tokens ?? tokens
        merged.cutAfter = other.cutAfter ?? cutAfter
        merged.malformedAfter = other.malformedAfter ?? malformedAfter
        merged.failFirst = other.failFirst ?? failFirst
        merged.only = other.only ?? only
        return merged
    }

    /// The text without its markers.
    static func stripped(from text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "[sim:"), let end = rest[start.upperBound...].firstIndex(of: "]") {
            result += rest[..<start.lowerBound]
            rest = rest[rest.index(after: end)...]
        }
        result += rest
        return result.trimmingCharacters(in: .whitespaces)
    }

    /// Bounds that keep durations and reply sizes sane (an hour; a million tokens).
    static let maxMilliseconds = 3_600_000
    static let maxTokens = 1_000_000

    private static func unwrapped(_ list: String) -> Substring {
        let trimmed = list.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("[sim:"), trimmed.hasSuffix("]") { return Substring(trimmed.dropFirst(5).dropLast()) }
        return Substring(trimmed)
    }

    /// Applies each pair of the list; returns the pairs it could not apply.
    private mutating func apply(list: Substring) -> [String] {
        var rejected: [String] = []
        for pair in list.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let key = parts.first, !key.isEmpty else { continue }
            if !apply(key: key, value: parts.count == 2 ? parts[1] : nil) {
                rejected.append(pair.trimmingCharacters(in: .whitespaces))
            }
        }
        return rejected
    }

    private mutating func apply(key: String, value: String?) -> Bool {
        func int(_ range: ClosedRange<Int>) -> Int? {
            value.flatMap { Int($0) }.flatMap { range.contains($0) ? $0 : nil }
        }
        func flag() -> Bool? {
            switch value?.lowercased() {
            case nil, "1", "true", "yes": true
            case "0", "false", "no": false
            default: nil
            }
        }
        switch key {
        case "delay":
            guard let v = int(0...Self.maxMilliseconds) else { return false }
            delayMilliseconds = v
        case "status":
            guard let v = int(400...599) else { return false }
            status = v
        case "retry_after":
            guard let v = int(0...86_400) else { return false }
            retryAfterSeconds = v
        case "quota":
            guard let v = flag() else { return false }
            quota = v
        case "safety":
            guard let v = flag() else { return false }
            safety = v
        case "ttft":
            guard let v = int(0...Self.maxMilliseconds) else { return false }
            ttftMilliseconds = v
        case "tps":
            guard let v = value.flatMap({ Double($0) }), v.isFinite, v >= 0.001 else { return false }
            tokensPerSecond = v
        case "tokens":
            guard let v = int(1...Self.maxTokens) else { return false }
            tokens = v
        case "cut":
            guard let v = int(0...Int.max) else { return false }
            cutAfter = v
        case "malformed":
            guard let v = int(0...Int.max) else { return false }
            malformedAfter = v
        case "fail_first":
            guard let v = int(0...Int.max) else { return false }
            failFirst = v
        case "only":
            guard let v = value.flatMap({ SimProvider(rawValue: $0.lowercased()) }) else { return false }
            only = v
        default: return false
        }
        return true
    }
}

extension SimDirectives: CustomStringConvertible {
    /// The directives as a `key=value,…` list (what ``init(list:)`` reads back).
    var description: String {
        var pairs: [String] = []
        func add(_ key: String, _ value: (some CustomStringConvertible)?) {
            if let value { pairs.append("\(key)=\(value)") }
        }
        add("delay", delayMilliseconds)
        add("status", status)
        add("retry_after", retryAfterSeconds)
        if quota { pairs.append("quota") }
        if safety { pairs.append("safety") }
        add("ttft", ttftMilliseconds)
        add("tps", tokensPerSecond)
        add("tokens", tokens)
        add("cut", cutAfter)
        add("malformed", malformedAfter)
        add("fail_first", failFirst)
        add("only", only?.rawValue)
        return pairs.joined(separator: ",")
    }
}

/// The protocol a request came in with.
enum SimProvider: String, Sendable, Equatable {
    case openai
    case gemini
}
