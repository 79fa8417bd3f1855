import Foundation

/// A user turn on its way from a gateway to a worker (docs/architecture.md, "The path
/// of a turn").
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
    /// After this moment no worker may start or go on with the turn: the gateway has
    /// told the client `reply_timeout` (or is about to) and moved on.
    public var deadline: Date?
    /// Names one published copy: a turn whose publish went unconfirmed is published
    /// again as a new copy, and a worker's takeover of a turn is limited to
    /// redeliveries of the copy it holds (`TurnLedger`). Nil from older gateways.
    public var copyID: UUID?

    public init(
        kind: Kind,
        turnID: UUID = UUID(),
        sessionID: UUID,
        userID: String,
        content: String,
        clientMessageID: String? = nil,
        gatewayID: String,
        sentAt: Date = Date(),
        deadline: Date? = nil
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
        self.deadline = deadline
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
        case deadline
        case copyID = "copy_id"
    }

    /// Whether the deadline has passed at `now`.
    public func isExpired(at now: Date = Date()) -> Bool {
        deadline.map { $0 <= now } ?? false
    }

    /// The AMQP `type` property.
    public var messageType: String { "turn.\(kind.rawValue)" }
}
