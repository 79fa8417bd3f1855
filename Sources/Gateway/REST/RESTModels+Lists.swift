import Foundation
import Shared

/// The lists the chat page reads: the user's sessions and the topic catalog.
extension RESTModels {
    struct SessionItem: Encodable {
        var summary: SessionSummary

        func encode(to encoder: any Encoder) throws {
            // Absent values are sent as null: the fields are always there.
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(summary.id.lowercased, forKey: .session_id)
            try container.encode(summary.status.rawValue, forKey: .status)
            try container.encode(summary.topicID, forKey: .topic_id)
            try container.encode(summary.courseID, forKey: .course_id)
            try container.encode(summary.topicTitle, forKey: .topic_title)
            try container.encode(summary.firstMessage.map { String($0.prefix(120)) }, forKey: .first_message)
            try container.encode(summary.startedAt, forKey: .started_at)
            try container.encode(summary.lastActivityAt, forKey: .last_activity_at)
        }

        enum CodingKeys: String, CodingKey {
            case session_id, status, topic_id, course_id, topic_title, first_message, started_at, last_activity_at
        }
    }

    struct SessionList: Encodable {
        var sessions: [SessionItem]
        var next_cursor: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(sessions, forKey: .sessions)
            try container.encode(next_cursor, forKey: .next_cursor)
        }

        enum CodingKeys: String, CodingKey { case sessions, next_cursor }
    }

    struct TopicItem: Encodable {
        var topic: CatalogTopic

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(topic.id, forKey: .topic_id)
            try container.encode(topic.title, forKey: .title)
            try container.encode(topic.description, forKey: .description)
            try container.encode(topic.courseID, forKey: .course_id)
            try container.encode(topic.courseTitle, forKey: .course_title)
        }

        enum CodingKeys: String, CodingKey { case topic_id, title, description, course_id, course_title }
    }

    struct TopicList: Encodable {
        var topics: [TopicItem]
    }

    /// How a client signs in here (`GET /api/auth`).
    struct SignInOptions: Encodable {
        /// `token` (a bearer token is needed) or `off` (`PARLEY_AUTH=off`: `?user=`).
        var authentication: String
        /// Whether `POST /api/accounts` and `/api/accounts/login` are served.
        var accounts: Bool
    }
}
