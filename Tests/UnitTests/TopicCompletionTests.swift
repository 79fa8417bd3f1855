import Foundation
import Testing

@testable import Shared

/// The learning platform's notice, as its JSON.
@Suite("Topic completion notice")
struct TopicCompletionTests {
    let session = UUID(uuidString: "9B2F6D1E-4C7A-4F0E-8D3B-2A61C5E8F013")!

    func body(user: String, course: Int64? = 70) throws -> [String: Any] {
        let completion = TopicCompletion(
            sessionID: session,
            userID: user,
            topicID: 7001,
            courseID: course,
            completedAt: Date(timeIntervalSince1970: 1_764_590_400.25)
        )
        return try #require(try JSONSerialization.jsonObject(with: completion.jsonBody) as? [String: Any])
    }

    @Test func theNoticeCarriesTheSessionsFacts() throws {
        let notice = try body(user: "42")
        #expect(notice["userId"] as? Int == 42)
        #expect(notice["topicId"] as? Int == 7001 && notice["courseId"] as? Int == 70)
        #expect(notice["sessionId"] as? String == "9b2f6d1e-4c7a-4f0e-8d3b-2a61c5e8f013")
        #expect(notice["completedAt"] as? String == "2025-12-01T12:00:00.250Z")
        #expect(notice.keys.sorted() == ["completedAt", "courseId", "sessionId", "topicId", "userId"])
    }

    /// A user id is a number only when it reads as one the platform could have issued.
    @Test(arguments: [("42", true), ("0", true), ("007", false), ("ana", false), ("123456789012345678", true), ("1234567890123456789", false)])
    func aUserIDIsANumberOnlyWhenItIsOne(user: String, isNumber: Bool) throws {
        let value = try body(user: user)["userId"]
        #expect((value is String) == !isNumber)
        #expect("\(value ?? "")" == user)
    }

    @Test func aTopicOutsideACourseHasANullCourse() throws {
        #expect(try body(user: "ana", course: nil)["courseId"] is NSNull)
    }
}

extension TopicCompletionTests {
    /// Milliseconds are rounded from the instant: a stored `.002` that reads back as
    /// `.00199…` is still `.002`.
    @Test func millisecondsAreRoundedNotTruncated() {
        #expect(TopicCompletion.timestamp(Date(timeIntervalSince1970: 1_764_590_400.001_999_9)) == "2025-12-01T12:00:00.002Z")
        #expect(TopicCompletion.timestamp(Date(timeIntervalSince1970: 1_764_590_400.9996)) == "2025-12-01T12:00:01.000Z")
        #expect(TopicCompletion.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
    }

    /// A row queued before migration 6 whose session is gone is sent from its payload.
    @Test func aNoticeIsReadBackFromAnOldPayload() throws {
        let old = TopicCompletion(
            sessionID: session,
            userID: "42",
            topicID: 7001,
            courseID: nil,
            completedAt: Date(timeIntervalSince1970: 1_764_590_400.25)
        )
        let read = try #require(TopicCompletion(payload: old.jsonBody))
        #expect(read == old)
        #expect(TopicCompletion(payload: Data("{}".utf8)) == nil)
    }
}
