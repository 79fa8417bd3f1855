import Foundation
import Shared

/// A frame the gateway sends to a client (docs/protocol.md, "Server → client"),
/// encoded once as JSON text.
enum ServerFrame: Sendable {
    case session(sessionID: UUID, status: String, requestID: String?)
    case accepted(sessionID: UUID, turnID: UUID, clientMessageID: String?)
    case delta(ReplyEnvelope.Delta)
    /// The deltas of the turn so far are void; it is being generated again.
    case reset(ReplyEnvelope.Reset)
    case reply(ReplyEnvelope.Done)
    /// `more`: the page is full, `resume` again from the last message's id for the rest.
    case history(sessionID: UUID, messages: [ChatMessage], status: String, more: Bool)
    case error(code: ErrorCode, message: String, context: ErrorContext = ErrorContext())

    struct ErrorContext: Sendable, Equatable {
        var sessionID: UUID? = nil
        var turnID: UUID? = nil
        var requestID: String? = nil
        var clientMessageID: String? = nil
        /// Seconds until a refused action may be tried again (`rate_limited`).
        var retryAfter: Int? = nil
    }

    var text: String {
        String(decoding: EnvelopeCoding.encode(WireFrame(self)), as: UTF8.self)
    }

    /// Frames a slow socket may miss without losing anything: the reply repeats them.
    var isDroppable: Bool {
        if case .delta = self { return true }
        return false
    }
}

/// The JSON shape of every server frame: a `type` and the fields that frame uses.
private struct WireFrame: Encodable {
    var type: String
    var sessionID: String?
    var turnID: String?
    var status: String?
    var requestID: String?
    var clientMessageID: String?
    var index: Int?
    var text: String?
    var message: ChatMessage?
    var messages: [ChatMessage]?
    var completed: Bool?
    var cancelled: Bool?
    var more: Bool?
    var reason: String?
    var code: String?
    var errorMessage: String?
    var retryAfter: Int?

    enum CodingKeys: String, CodingKey {
        case type, status, index, text, message, messages, completed, cancelled, more, reason, code
        case sessionID = "session_id"
        case turnID = "turn_id"
        case requestID = "request_id"
        case clientMessageID = "client_msg_id"
        case retryAfter = "retry_after"
    }

    init(_ frame: ServerFrame) {
        switch frame {
        case .session(let sessionID, let status, let requestID):
            type = "session"
            self.sessionID = sessionID.lowercased
            self.status = status
            self.requestID = requestID
        case .accepted(let sessionID, let turnID, let clientMessageID):
            type = "accepted"
            self.sessionID = sessionID.lowercased
            self.turnID = turnID.lowercased
            self.clientMessageID = clientMessageID
        case .delta(let delta):
            type = "delta"
            sessionID = delta.sessionID.lowercased
            turnID = delta.turnID.lowercased
            index = delta.index
            text = delta.text
        case .reset(let reset):
            type = "reset"
            sessionID = reset.sessionID.lowercased
            turnID = reset.turnID.lowercased
            reason = reset.reason
        case .reply(let done):
            type = "reply"
            sessionID = done.sessionID.lowercased
            turnID = done.turnID.lowercased
            message = done.message
            status = done.status
            completed = done.completed
            cancelled = done.cancelled ? true : nil
        case .history(let sessionID, let messages, let status, let more):
            type = "history"
            self.sessionID = sessionID.lowercased
            self.messages = messages
            self.status = status
            self.more = more
        case .error(let code, let message, let context):
            type = "error"
            self.code = code.rawValue
            self.errorMessage = message
            sessionID = context.sessionID?.lowercased
            turnID = context.turnID?.lowercased
            requestID = context.requestID
            clientMessageID = context.clientMessageID
            retryAfter = context.retryAfter
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        try container.encodeIfPresent(sessionID, forKey: .sessionID)
        try container.encodeIfPresent(turnID, forKey: .turnID)
        try container.encodeIfPresent(status, forKey: .status)
        try container.encodeIfPresent(requestID, forKey: .requestID)
        try container.encodeIfPresent(clientMessageID, forKey: .clientMessageID)
        try container.encodeIfPresent(index, forKey: .index)
        try container.encodeIfPresent(text, forKey: .text)
        try container.encodeIfPresent(message, forKey: .message)
        try container.encodeIfPresent(messages, forKey: .messages)
        try container.encodeIfPresent(completed, forKey: .completed)
        try container.encodeIfPresent(cancelled, forKey: .cancelled)
        try container.encodeIfPresent(more, forKey: .more)
        try container.encodeIfPresent(reason, forKey: .reason)
        try container.encodeIfPresent(code, forKey: .code)
        try container.encodeIfPresent(retryAfter, forKey: .retryAfter)
        // `message` is the error text on error frames (docs/protocol.md).
        if let errorMessage {
            var text = encoder.container(keyedBy: ErrorKeys.self)
            try text.encode(errorMessage, forKey: .message)
        }
    }

    private enum ErrorKeys: String, CodingKey { case message }
}
