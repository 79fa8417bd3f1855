import Foundation

extension Duration {
    /// The duration in whole milliseconds (rounded down).
    public var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// The duration as Foundation's `TimeInterval` (seconds).
    public var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

extension Duration {
    /// The longest duration read from outside the process: a day.
    public static let longestUntrusted = Duration.seconds(86_400)

    /// A duration from a number of seconds that came from outside (a header, a JSON
    /// field, a message): nil when it is not a number, zero when negative, and at most
    /// `limit` — never a trap, whatever the peer sent (`1e300`, `inf`, `nan`).
    public static func seconds(untrusted value: Double, limit: Duration = .longestUntrusted) -> Duration? {
        guard !value.isNaN else { return nil }
        guard value > 0 else { return .zero }
        guard value < limit.timeInterval else { return limit }
        return .milliseconds(Int64(value * 1000))
    }
}
