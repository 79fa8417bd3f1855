import Foundation

/// A learner completed a training topic: the learning platform's notice
/// (`POST /api/v1/userprogress/complete-topic`), built from the session's facts when it
/// is sent (the outbox row holds only the session).
public struct TopicCompletion: Sendable, Equatable {
    public var sessionID: UUID
    public var userID: String
    public var topicID: Int64
    public var courseID: Int64?
    public var completedAt: Date

    public init(sessionID: UUID, userID: String, topicID: Int64, courseID: Int64?, completedAt: Date) {
        self.sessionID = sessionID
        self.userID = userID
        self.topicID = topicID
        self.courseID = courseID
        self.completedAt = completedAt
    }

    /// The platform's JSON: `userId` a number when the id is one (its own users' ids
    /// are numbers; up to 18 digits, no leading zero), a string otherwise;
    /// `completedAt` in UTC with milliseconds; `courseId` null for a topic outside a course.
    public var jsonBody: Data {
        var object: [String: Any] = [
            "topicId": topicID,
            "courseId": courseID.map { $0 as Any } ?? NSNull(),
            "completedAt": Self.timestamp(completedAt),
            "sessionId": sessionID.uuidString.lowercased(),
        ]
        let isNumber = userID.wholeMatch(of: /0|[1-9][0-9]{0,17}/) != nil
        object["userId"] = isNumber ? Int64(userID).map { $0 as Any } ?? userID : userID
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    /// `2025-12-01T12:00:00.250Z`: the milliseconds rounded from the instant itself (a
    /// formatter truncates, and a stored `.002` can read back as `.00199…`).
    static func timestamp(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (seconds, fraction) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        let whole = Date(timeIntervalSince1970: TimeInterval(fraction < 0 ? seconds - 1 : seconds))
        let text = whole.formatted(Date.ISO8601FormatStyle(timeZone: .gmt))  // 2025-12-01T12:00:00Z
        return text.dropLast() + "." + String(format: "%03lld", (fraction + 1000) % 1000) + "Z"
    }

    /// A notice from the payload a row was queued with before migration 6 (the same
    /// fields); nil when it cannot be read.
    public init?(payload: Data) {
        guard let object = try? JSONSerialization.jsonObject(with: payload) as? [String: Any],
            let session = (object["sessionId"] as? String).flatMap(UUID.init(uuidString:)),
            let topic = (object["topicId"] as? NSNumber)?.int64Value,
            let user = object["userId"].map({ "\($0)" }),
            let completed = (object["completedAt"] as? String).flatMap({ try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse($0) })
        else { return nil }
        self.init(sessionID: session, userID: user, topicID: topic, courseID: (object["courseId"] as? NSNumber)?.int64Value, completedAt: completed)
    }
}
