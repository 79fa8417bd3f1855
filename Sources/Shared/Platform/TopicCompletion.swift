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
            "completedAt": Self.timestamp.format(completedAt),
            "sessionId": sessionID.uuidString.lowercased(),
        ]
        let isNumber = userID.wholeMatch(of: /0|[1-9][0-9]{0,17}/) != nil
        object["userId"] = isNumber ? Int64(userID).map { $0 as Any } ?? userID : userID
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    private static let timestamp = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
}
