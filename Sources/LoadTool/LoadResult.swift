import Foundation

/// What a run measured, as written to `--json` (keys in snake_case).
struct LoadResult: Codable, Sendable {
    struct Latencies: Codable, Sendable {
        /// From sending a turn to its `accepted`: the gateway and the broker's confirm.
        var accepted: Percentiles?
        /// From sending a turn to its first `delta`.
        var firstDelta: Percentiles?
        /// From sending a turn to its `reply` (or error): what the person waits.
        var reply: Percentiles?
    }

    /// One second of the run, by the time turns ended.
    struct Second: Codable, Sendable {
        var second: Int
        var replies: Int
        var errors: Int
        var replyP50: Double?
        var replyP95: Double?
        var replyP99: Double?
        var firstDeltaP50: Double?
    }

    /// A process's share of the measured window.
    struct ProcessFigures: Codable, Sendable {
        var name: String
        var pid: Int32
        var cpuSeconds: Double
        /// CPU milliseconds per turn answered in the window.
        var cpuMillisecondsPerTurn: Double?
        /// Share of one core, in percent.
        var cpuPercent: Double
        var residentMegabytes: Double
        var maxResidentMegabytes: Double
    }

    var tool = "parley-load"
    var label: String?
    var startedAt: String
    var settings: [String: String]
    var warmupSeconds: Double
    var durationSeconds: Double
    /// Turns sent in the window.
    var turns: Int
    var replies: Int
    /// Replies that ended in the window, per second.
    var turnsPerSecond: Double
    /// Turns that ended in an error, by code (`no_reply`: none came before the drain
    /// time ran out; `socket_closed`: the socket closed first).
    var errors: [String: Int]
    /// Errors that named no turn (a refused start, a refused socket), by code.
    var otherErrors: [String: Int]
    var unexpectedReplies: Int
    var firstUnexpectedReply: String?
    var connections: Int
    var connectFailures: Int
    var lastConnectError: String?
    var sessions: Int
    var deltasPerReply: Double?
    var latencyMilliseconds: Latencies
    var processes: [ProcessFigures]
    var series: [Second]
}

extension LoadResult {
    static func encoded(_ result: LoadResult) throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(result)
    }

    /// Per-second figures of every turn of the run, warm-up included.
    static func series(_ turns: [TurnTiming]) -> [Second] {
        var buckets: [Int: [TurnTiming]] = [:]
        for turn in turns { buckets[Int(turn.finishedAt / 1_000_000), default: []].append(turn) }
        guard let last = buckets.keys.max() else { return [] }
        return (0...last).map { second in
            let ended = buckets[second] ?? []
            let replies = ended.filter { $0.errorCode == nil }
            let latency = Percentiles(microseconds: replies.map(\.endToEnd))
            return Second(
                second: second,
                replies: replies.count,
                errors: ended.count - replies.count,
                replyP50: latency?.p50,
                replyP95: latency?.p95,
                replyP99: latency?.p99,
                firstDeltaP50: Percentiles(microseconds: replies.compactMap(\.toFirstDelta))?.p50
            )
        }
    }
}
