import Foundation

/// Reads a server's retry hint: `Retry-After` in seconds (or an HTTP date), else an
/// OpenAI-style `x-ratelimit-reset-requests` duration such as `1s`, `6m0s` or `250ms`.
enum RetryHint {
    /// The hint of a `Retry-After` and an `x-ratelimit-reset-requests` header value.
    static func from(retryAfter: String?, resetRequests: String?, now: Date = Date()) -> Duration? {
        if let value = retryAfter?.trimmingCharacters(in: .whitespaces) {
            if let seconds = Double(value) { return .seconds(untrusted: seconds) }
            if let date = httpDate(value) { return .seconds(untrusted: date.timeIntervalSince(now)) }
        }
        if let value = resetRequests { return goDuration(value) }
        return nil
    }

    /// Go's duration format as OpenAI sends it: `1s`, `6m0s`, `1h2m3.5s`, `250ms`.
    static func goDuration(_ text: String) -> Duration? {
        var total = 0.0
        var number = ""
        var index = text.startIndex
        var sawUnit = false
        while index < text.endIndex {
            let character = text[index]
            if character.isNumber || character == "." {
                number.append(character)
                index = text.index(after: index)
                continue
            }
            guard let value = Double(number) else { return nil }
            let rest = text[index...]
            if rest.hasPrefix("ms") {
                total += value / 1000
                index = text.index(index, offsetBy: 2)
            } else {
                switch character {
                case "h": total += value * 3600
                case "m": total += value * 60
                case "s": total += value
                default: return nil
                }
                index = text.index(after: index)
            }
            number = ""
            sawUnit = true
        }
        guard sawUnit, number.isEmpty else { return nil }
        return .seconds(untrusted: total)
    }

    /// Google's `RetryInfo.retryDelay`, a protobuf Duration in JSON: `"2s"`, `"0.5s"`.
    static func protobufDuration(_ text: String) -> Duration? {
        guard text.hasSuffix("s"), let seconds = Double(text.dropLast()) else { return nil }
        return .seconds(untrusted: seconds)
    }

    /// An HTTP date in the IMF-fixdate form every server sends (RFC 9110 §5.6.7):
    /// `Sun, 06 Nov 1994 08:49:37 GMT`. Read by hand: a `DateFormatter` per response
    /// is slow, and Foundation's keeps memory for good (found by the fuzzer's leak check).
    static func httpDate(_ text: String) -> Date? {
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0].count == 4, parts[0].hasSuffix(","), parts[5] == "GMT",
            let day = number(parts[1], digits: 2, in: 1...31),
            let month = months.firstIndex(of: String(parts[2])),
            let year = number(parts[3], digits: 4, in: 0...9999)
        else { return nil }
        let clock = parts[4].split(separator: ":", omittingEmptySubsequences: false)
        guard clock.count == 3,
            let hour = number(clock[0], digits: 2, in: 0...23),
            let minute = number(clock[1], digits: 2, in: 0...59),
            let second = number(clock[2], digits: 2, in: 0...60)
        else { return nil }
        let days = daysSinceEpoch(year: year, month: month + 1, day: day)
        return Date(timeIntervalSince1970: TimeInterval(((days * 24 + hour) * 60 + minute) * 60 + second))
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private static func number(_ text: Substring, digits: Int, in range: ClosedRange<Int>) -> Int? {
        guard text.utf8.count == digits, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let value = Int(text), range.contains(value)
        else { return nil }
        return value
    }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard
    /// Hinnant's `days_from_civil`).
    private static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
