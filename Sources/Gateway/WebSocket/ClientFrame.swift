import Foundation

/// A frame a client sent, validated. Plain text (not a JSON object) is a message to
/// the socket's current session.
enum ClientFrame: Equatable, Sendable {
    case start(requestID: String?, topicID: Int64?, courseID: Int64?)
    case message(sessionID: UUID?, content: String, clientMessageID: String?)
    case resume(sessionID: UUID, afterID: Int64)
    /// Stop generating a turn; `sessionID` helps when the turn was sent from another gateway.
    case cancel(turnID: UUID, sessionID: UUID?)
}

extension ClientFrame {
    /// The `type` label of `parley_gateway_frames_received_total`.
    var kind: String {
        switch self {
        case .start: "start"
        case .message: "message"
        case .resume: "resume"
        case .cancel: "cancel"
        }
    }
}

/// Decodes and validates client frames (docs/protocol.md, "Client → server").
struct ClientFrameDecoder: Sendable {
    var maxContentCharacters: Int

    /// Every field any frame may carry; which ones a frame needs depends on `type`.
    private struct WireFrame: Decodable {
        var type: String?
        var request_id: String?
        var client_msg_id: String?
        var session_id: String?
        var content: String?
        var topic_id: Int64?
        var course_id: Int64?
        var after_id: Int64?
        var turn_id: String?
    }

    func decode(_ text: String) throws(ClientError) -> ClientFrame {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("{") else {
            return .message(sessionID: nil, content: try checkedContent(trimmed, clientMessageID: nil), clientMessageID: nil)
        }
        let frame = try wireFrame(trimmed)
        let requestID = frame.request_id
        let clientMessageID = frame.client_msg_id
        guard let type = frame.type else {
            throw ClientError(code: .malformedFrame, message: "the frame has no \"type\" (start, message, resume)", requestID: requestID)
        }
        switch type {
        case "start":
            return .start(requestID: requestID, topicID: frame.topic_id, courseID: frame.course_id)
        case "message":
            guard let content = frame.content else {
                throw ClientError(code: .malformedFrame, message: "a message frame needs \"content\" (a string)", clientMessageID: clientMessageID)
            }
            let sessionID = try sessionID(frame.session_id, clientMessageID: clientMessageID)
            return .message(
                sessionID: sessionID,
                content: try checkedContent(content, clientMessageID: clientMessageID),
                clientMessageID: clientMessageID
            )
        case "resume":
            guard let sessionID = try sessionID(frame.session_id, clientMessageID: nil) else {
                throw ClientError(code: .malformedFrame, message: "a resume frame needs \"session_id\"", requestID: requestID)
            }
            return .resume(sessionID: sessionID, afterID: frame.after_id ?? 0)
        case "cancel":
            guard let text = frame.turn_id, let turnID = UUID(uuidString: text) else {
                throw ClientError(code: .malformedFrame, message: "a cancel frame needs \"turn_id\" (a UUID string)", requestID: requestID)
            }
            return .cancel(turnID: turnID, sessionID: try sessionID(frame.session_id, clientMessageID: nil))
        default:
            throw ClientError(
                code: .unknownType,
                message: "unknown frame type \"\(type)\"; use start, message, resume or cancel",
                requestID: requestID
            )
        }
    }

    private func wireFrame(_ json: String) throws(ClientError) -> WireFrame {
        do {
            return try JSONDecoder().decode(WireFrame.self, from: Data(json.utf8))
        } catch DecodingError.typeMismatch(let expected, let context) {
            let ids = Self.identifiers(in: json)
            throw ClientError(
                code: .malformedFrame,
                message: "\"\(Self.field(context))\" must be \(Self.describe(expected))",
                requestID: ids.requestID,
                clientMessageID: ids.clientMessageID
            )
        } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
            let ids = Self.identifiers(in: json)
            throw ClientError(
                code: .malformedFrame,
                message: "\"\(Self.field(context))\" must be a whole number",
                requestID: ids.requestID,
                clientMessageID: ids.clientMessageID
            )
        } catch {
            throw ClientError(code: .malformedFrame, message: "the frame is not valid JSON; send a JSON object with a \"type\" or plain text")
        }
    }

    /// Trimmed content within the limit, or `empty_content` / `content_too_long` /
    /// `invalid_content`.
    func checkedContent(_ content: String, clientMessageID: String?) throws(ClientError) -> String {
        let trimmed = content.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else {
            throw ClientError(code: .emptyContent, message: "the message is empty", clientMessageID: clientMessageID)
        }
        // PostgreSQL text cannot hold U+0000: refused here, it never reaches a worker.
        guard !trimmed.unicodeScalars.contains("\u{0}") else {
            throw ClientError(
                code: .invalidContent,
                message: "the message contains a NUL character (U+0000), which cannot be stored; remove it",
                clientMessageID: clientMessageID
            )
        }
        guard trimmed.count <= maxContentCharacters else {
            throw ClientError(
                code: .contentTooLong,
                message: "the message has \(trimmed.count) characters; the limit is \(maxContentCharacters)",
                clientMessageID: clientMessageID
            )
        }
        return trimmed
    }

    private func sessionID(_ text: String?, clientMessageID: String?) throws(ClientError) -> UUID? {
        guard let text else { return nil }
        guard let id = UUID(uuidString: text) else {
            throw ClientError(code: .malformedFrame, message: "\"session_id\" must be a UUID string", clientMessageID: clientMessageID)
        }
        return id
    }

    /// The client's own identifiers of a frame that failed to decode, so its error can be matched.
    private static func identifiers(in json: String) -> (requestID: String?, clientMessageID: String?) {
        let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any]
        return (object?["request_id"] as? String, object?["client_msg_id"] as? String)
    }

    private static func field(_ context: DecodingError.Context) -> String {
        context.codingPath.map(\.stringValue).joined(separator: ".")
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int64.Type: "a whole number"
        default: "of another type"
        }
    }
}
