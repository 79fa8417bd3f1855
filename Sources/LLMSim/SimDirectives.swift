/// Faults and timing a request asks for with markers in its last user message, e.g.
/// `[sim:delay=2000]` (answer after 2 s) or `[sim:status=503]` (fail with 503).
/// Tests use them to steer one request without reconfiguring the server.
struct SimDirectives: Sendable, Equatable {
    var delayMilliseconds: Int?
    var status: Int?

    init(delayMilliseconds: Int? = nil, status: Int? = nil) {
        self.delayMilliseconds = delayMilliseconds
        self.status = status
    }

    init(parsing text: String) {
        self.init()
        var rest = Substring(text)
        while let start = rest.range(of: "[sim:") {
            guard let end = rest[start.upperBound...].firstIndex(of: "]") else { break }
            let body = rest[start.upperBound..<end]
            for pair in body.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, let value = Int(parts[1]) else { continue }
                switch parts[0] {
                case "delay": delayMilliseconds = value
                case "status": status = value
                default: continue
                }
            }
            rest = rest[rest.index(after: end)...]
        }
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
}

import Foundation
