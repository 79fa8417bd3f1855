import Foundation
import Shared

/// The JSON shapes of the REST API (described by `Assets/openapi.json`).
enum RESTModels {
    struct Session: Encodable {
        var session_id: String
        var user_id: String
        var topic_id: Int64?
        var course_id: Int64?
        var topic_title: String?
        var status: String
        var started_at: Date
        var completed_at: Date?

        init(_ record: SessionRecord, context: SessionContext?) {
            session_id = record.id.lowercased
            user_id = record.userID
            topic_id = record.topicID
            course_id = record.courseID
            topic_title = context?.topicTitle
            status = record.status.rawValue
            started_at = record.startedAt
            completed_at = record.completedAt
        }

        func encode(to encoder: any Encoder) throws {
            // Absent values are sent as null: the fields are always there.
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(session_id, forKey: .session_id)
            try container.encode(user_id, forKey: .user_id)
            try container.encode(topic_id, forKey: .topic_id)
            try container.encode(course_id, forKey: .course_id)
            try container.encode(topic_title, forKey: .topic_title)
            try container.encode(status, forKey: .status)
            try container.encode(started_at, forKey: .started_at)
            try container.encode(completed_at, forKey: .completed_at)
        }

        enum CodingKeys: String, CodingKey {
            case session_id, user_id, topic_id, course_id, topic_title, status, started_at, completed_at
        }
    }

    struct Started: Encodable {
        var session: Session
        var message: ChatMessage
    }

    struct Replied: Encodable {
        var session_id: String
        var turn_id: String
        var message: ChatMessage
        var status: String
        var completed: Bool
        var cancelled: Bool

        init(_ done: ReplyEnvelope.Done) {
            session_id = done.sessionID.lowercased
            turn_id = done.turnID.lowercased
            message = done.message
            status = done.status
            completed = done.completed
            cancelled = done.cancelled
        }
    }

    struct History: Encodable {
        var session: Session
        var messages: [ChatMessage]
        var next_cursor: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(session, forKey: .session)
            try container.encode(messages, forKey: .messages)
            try container.encode(next_cursor, forKey: .next_cursor)
        }

        enum CodingKeys: String, CodingKey { case session, messages, next_cursor }
    }

    /// One prompt and its answer, as the older `/v1/chat` API returned them.
    struct ChatLog: Encodable {
        var id: String
        var user_id: String
        var session_id: String
        var prompt: String
        var response: String
        var model: String?
        var timestamp: Date

        init(_ entry: ChatLogEntry) {
            id = entry.turnID.lowercased
            user_id = entry.userID
            session_id = entry.sessionID.lowercased
            prompt = entry.prompt
            response = entry.response
            model = entry.model
            timestamp = entry.timestamp
        }

        init(turnID: UUID, sessionID: UUID, userID: String, prompt: String, done: ReplyEnvelope.Done) {
            id = turnID.lowercased
            user_id = userID
            session_id = sessionID.lowercased
            self.prompt = prompt
            response = done.message.content
            model = done.model
            timestamp = done.message.timestamp
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(user_id, forKey: .user_id)
            try container.encode(session_id, forKey: .session_id)
            try container.encode(prompt, forKey: .prompt)
            try container.encode(response, forKey: .response)
            try container.encode(model, forKey: .model)
            try container.encode(timestamp, forKey: .timestamp)
        }

        enum CodingKeys: String, CodingKey { case id, user_id, session_id, prompt, response, model, timestamp }
    }

    struct Logs: Encodable {
        var logs: [ChatLog]
        var next_cursor: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(logs, forKey: .logs)
            try container.encode(next_cursor, forKey: .next_cursor)
        }

        enum CodingKeys: String, CodingKey { case logs, next_cursor }
    }

    // MARK: Requests

    struct StartRequest: RequestBody {
        static let fields = ["topic_id", "course_id"]
        var topic_id: Int64?
        var course_id: Int64?
    }

    struct MessageRequest: RequestBody {
        static let fields = ["content", "client_msg_id"]
        var content: String
        var client_msg_id: String?
    }

    struct ChatRequest: RequestBody {
        static let fields = ["user_id", "prompt"]
        var user_id: String
        var prompt: String
    }
}

/// A JSON request body: its fields are the only ones it may have. A misspelt field
/// (`topicId` for `topic_id`) is refused rather than ignored: ignored, it would start
/// a free chat instead of the topic without a word (found by the REST fuzzer against
/// the document's `additionalProperties: false`).
protocol RequestBody: Decodable {
    static var fields: [String] { get }
}
