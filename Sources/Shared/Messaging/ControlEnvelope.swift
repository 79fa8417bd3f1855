import Foundation

/// A signal to every worker (fanout on `parley.control`), e.g. cancel a turn.
public struct ControlEnvelope: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case cancel
    }

    public var version: Int
    public var kind: Kind
    public var turnID: UUID
    public var sessionID: UUID

    public init(kind: Kind, turnID: UUID, sessionID: UUID) {
        self.version = 1
        self.kind = kind
        self.turnID = turnID
        self.sessionID = sessionID
    }

    enum CodingKeys: String, CodingKey {
        case version = "v"
        case kind
        case turnID = "turn_id"
        case sessionID = "session_id"
    }
}
