import Foundation

/// A frame a client sent, validated. Plain text (not a JSON object) is a message to
/// the socket's current session.
enum ClientFrame: Equatable, Sendable {
    case start(requestID: String?, topicID: Int64?, courseID: Int64?)
    case message(sessionID: UUID?, content: String, clientMessageID: String?)
    case resume(sessionID: UUID, afterID: Int64)
}

/// A frame the gateway refuses, with the code the client sees.
struct FrameError: Error, Equatable, Sendable {
    var code: String
    var message: String
    var requestID: String? = nil
    var clientMessageID: String? = nil
}

/// Decodes and validates client frames (DESIGN §5).
struct ClientFrameDecoder: Sendable {
    var maxContentCharacters: Int

    func decode(_ text: String) throws(FrameError) -> ClientFrame {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("{") else {
            return .message(sessionID: nil, content: try checkedContent(trimmed, clientMessageID: nil), clientMessageID: nil)
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
            throw FrameError(code: "malformed_frame", message: "the frame is not valid JSON; send a JSON object with a \"type\" or plain text")
        }
        let requestID = object["request_id"] as? String
        let clientMessageID = object["client_msg_id"] as? String
        guard let type = object["type"] as? String else {
            throw FrameError(code: "malformed_frame", message: "the frame has no \"type\" (start, message, resume)", requestID: requestID)
        }
        switch type {
        case "start":
            return .start(
                requestID: requestID,
                topicID: try optionalInteger(object, "topic_id", requestID: requestID),
                courseID: try optionalInteger(object, "course_id", requestID: requestID)
            )
        case "message":
            guard let content = object["content"] as? String else {
                throw FrameError(code: "malformed_frame", message: "a message frame needs \"content\" (a string)", clientMessageID: clientMessageID)
            }
            let sessionID = try optionalSessionID(object, clientMessageID: clientMessageID)
            return .message(sessionID: sessionID, content: try checkedContent(content, clientMessageID: clientMessageID), clientMessageID: clientMessageID)
        case "resume":
            guard let sessionID = try optionalSessionID(object, clientMessageID: nil) else {
                throw FrameError(code: "malformed_frame", message: "a resume frame needs \"session_id\"", requestID: requestID)
            }
            return .resume(sessionID: sessionID, afterID: try optionalInteger(object, "after_id", requestID: requestID) ?? 0)
        default:
            throw FrameError(code: "unknown_type", message: "unknown frame type \"\(type)\"; use start, message or resume", requestID: requestID)
        }
    }

    private func checkedContent(_ content: String, clientMessageID: String?) throws(FrameError) -> String {
        let trimmed = content.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else {
            throw FrameError(code: "empty_content", message: "the message is empty", clientMessageID: clientMessageID)
        }
        guard trimmed.count <= maxContentCharacters else {
            throw FrameError(
                code: "content_too_long", message: "the message has \(trimmed.count) characters; the limit is \(maxContentCharacters)",
                clientMessageID: clientMessageID
            )
        }
        return trimmed
    }

    private func optionalSessionID(_ object: [String: Any], clientMessageID: String?) throws(FrameError) -> UUID? {
        guard let value = object["session_id"] else { return nil }
        guard let text = value as? String, let id = UUID(uuidString: text) else {
            throw FrameError(code: "malformed_frame", message: "\"session_id\" must be a UUID string", clientMessageID: clientMessageID)
        }
        return id
    }

    private func optionalInteger(_ object: [String: Any], _ key: String, requestID: String?) throws(FrameError) -> Int64? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        if !(value is Bool), let number = value as? Int { return Int64(number) }
        throw FrameError(code: "malformed_frame", message: "\"\(key)\" must be a whole number", requestID: requestID)
    }
}
