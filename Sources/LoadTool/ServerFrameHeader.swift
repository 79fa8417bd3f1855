import Foundation

/// The fields of a gateway's frame that the load tool reads (docs/protocol.md). The
/// rest of a frame (a reply's message, a delta's text) is skipped, not decoded.
struct ServerFrameHeader: Decodable, Sendable {
    var type: String
    var sessionID: String?
    var turnID: String?
    var clientMessageID: String?
    var requestID: String?
    var code: String?

    enum CodingKeys: String, CodingKey {
        case type
        case sessionID = "session_id"
        case turnID = "turn_id"
        case clientMessageID = "client_msg_id"
        case requestID = "request_id"
        case code
    }
}

/// The frames the load tool sends.
enum ClientFrameText {
    static func start(requestID: String) -> String {
        #"{"type":"start","request_id":"\#(requestID)"}"#
    }

    /// `content` is the turn's text already written as a JSON string (`jsonString`):
    /// every turn of a run has the same text, so it is encoded once.
    static func message(session: String, clientMessageID: String, content: String) -> String {
        #"{"type":"message","session_id":"\#(session)","client_msg_id":"\#(clientMessageID)","content":\#(content)}"#
    }

    /// `text` as a JSON string literal.
    static func jsonString(_ text: String) -> String {
        (try? JSONEncoder().encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }

    static func resume(session: String) -> String {
        #"{"type":"resume","session_id":"\#(session)","after_id":0}"#
    }
}
