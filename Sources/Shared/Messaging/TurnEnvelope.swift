import Foundation

/// A user turn on its way from a gateway to a worker (DESIGN §4).
public struct TurnEnvelope: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// The session was just started: the worker writes the tutor's opening message.
        case start
        /// A message the user sent.
        case message
    }

    public var version: Int
    public var kind: Kind
    public var turnID: UUID
    public var sessionID: UUID
    public var userID: String
    public var content: String
    public var clientMessageID: String?
    public var gatewayID: String
    public var sentAt: Date

    public init(
        kind: Kind, turnID: UUID = UUID(), sessionID: UUID, userID: String, content: String,
        clientMessageID: String? = nil, gatewayID: String, sentAt: Date = Date()
    ) {
        self.version = 1
        self.kind = kind
        self.turnID = turnID
        self.sessionID = sessionID
        self.userID = userID
        self.content = content
        self.clientMessageID = clientMessageID
        self.gatewayID = gatewayID
        self.sentAt = sentAt
    }

    enum CodingKeys: String, CodingKey {
        case version = "v"
        case kind
        case turnID = "turn_id"
        case sessionID = "session_id"
        case userID = "user_id"
        case content
        case clientMessageID = "client_msg_id"
        case gatewayID = "gateway_id"
        case sentAt = "sent_at"
    }

    /// The AMQP `type` property.
    public var messageType: String { "turn.\(kind.rawValue)" }
}
