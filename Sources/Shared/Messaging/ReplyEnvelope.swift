import Foundation

/// A message as clients and envelopes show it.
public struct ChatMessage: Codable, Sendable, Equatable {
    public enum Role: String, Codable, Sendable {
        case system, user, assistant
    }

    public var id: Int64
    public var role: Role
    public var content: String
    public var timestamp: Date

    public init(id: Int64, role: Role, content: String, timestamp: Date) {
        self.id = id
        self.role = role
        self.content = content
        self.timestamp = timestamp
    }
}

public struct TokenUsage: Codable, Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int

    /// Counts come from a provider: each is clamped to what the database column holds
    /// (0 ... Int32.max), so that a hostile or buggy answer cannot fail the turn.
    public init(promptTokens: Int = 0, completionTokens: Int = 0) {
        self.promptTokens = Self.clamped(promptTokens)
        self.completionTokens = Self.clamped(completionTokens)
    }

    static func clamped(_ count: Int) -> Int { min(max(count, 0), Int(Int32.max)) }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
    }
}

/// A reply on its way from a worker to the gateways (routing key = session id).
public enum ReplyEnvelope: Sendable, Equatable {
    case delta(Delta)
    /// The deltas sent so far for the turn are void: generation starts over.
    case reset(Reset)
    case done(Done)
    case error(Failure)

    public struct Reset: Codable, Sendable, Equatable {
        public var sessionID: UUID
        public var turnID: UUID
        public var reason: String

        public init(sessionID: UUID, turnID: UUID, reason: String) {
            self.sessionID = sessionID
            self.turnID = turnID
            self.reason = reason
        }

        enum CodingKeys: String, CodingKey {
            case sessionID = "session_id"
            case turnID = "turn_id"
            case reason
        }
    }

    public struct Delta: Codable, Sendable, Equatable {
        public var sessionID: UUID
        public var turnID: UUID
        public var index: Int
        public var text: String

        public init(sessionID: UUID, turnID: UUID, index: Int, text: String) {
            self.sessionID = sessionID
            self.turnID = turnID
            self.index = index
            self.text = text
        }

        enum CodingKeys: String, CodingKey {
            case sessionID = "session_id"
            case turnID = "turn_id"
            case index
            case text
        }
    }

    public struct Done: Codable, Sendable, Equatable {
        public var sessionID: UUID
        public var turnID: UUID
        public var message: ChatMessage
        public var status: String
        public var completed: Bool
        public var usage: TokenUsage
        /// The user cancelled the turn: `message` holds what was generated until then.
        public var cancelled: Bool
        /// The model that answered, when known.
        public var model: String?

        public init(
            sessionID: UUID,
            turnID: UUID,
            message: ChatMessage,
            status: String,
            completed: Bool,
            usage: TokenUsage,
            cancelled: Bool = false,
            model: String? = nil
        ) {
            self.model = model
            self.sessionID = sessionID
            self.turnID = turnID
            self.message = message
            self.status = status
            self.completed = completed
            self.usage = usage
            self.cancelled = cancelled
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            sessionID = try container.decode(UUID.self, forKey: .sessionID)
            turnID = try container.decode(UUID.self, forKey: .turnID)
            message = try container.decode(ChatMessage.self, forKey: .message)
            status = try container.decode(String.self, forKey: .status)
            completed = try container.decode(Bool.self, forKey: .completed)
            usage = try container.decodeIfPresent(TokenUsage.self, forKey: .usage) ?? TokenUsage()
            cancelled = try container.decodeIfPresent(Bool.self, forKey: .cancelled) ?? false
            model = try container.decodeIfPresent(String.self, forKey: .model)
        }

        enum CodingKeys: String, CodingKey {
            case sessionID = "session_id"
            case turnID = "turn_id"
            case message
            case status
            case completed
            case usage
            case cancelled
            case model
        }
    }

    public struct Failure: Codable, Sendable, Equatable {
        public var sessionID: UUID
        public var turnID: UUID
        public var code: ErrorCode
        public var message: String

        public init(sessionID: UUID, turnID: UUID, code: ErrorCode, message: String) {
            self.sessionID = sessionID
            self.turnID = turnID
            self.code = code
            self.message = message
        }

        enum CodingKeys: String, CodingKey {
            case sessionID = "session_id"
            case turnID = "turn_id"
            case code
            case message
        }
    }

    public var sessionID: UUID {
        switch self {
        case .delta(let delta): delta.sessionID
        case .reset(let reset): reset.sessionID
        case .done(let done): done.sessionID
        case .error(let failure): failure.sessionID
        }
    }

    public var turnID: UUID {
        switch self {
        case .delta(let delta): delta.turnID
        case .reset(let reset): reset.turnID
        case .done(let done): done.turnID
        case .error(let failure): failure.turnID
        }
    }

    /// Whether this envelope ends its turn.
    public var isFinal: Bool {
        switch self {
        case .delta, .reset: false
        case .done, .error: true
        }
    }

    public var kind: String {
        switch self {
        case .delta: "delta"
        case .reset: "reset"
        case .done: "done"
        case .error: "error"
        }
    }
}

extension ReplyEnvelope: Codable {
    private enum EnvelopeKeys: String, CodingKey {
        case version = "v"
        case kind
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: EnvelopeKeys.self)
        let kind = try container.decode(String.self, forKey: .kind)
        switch kind {
        case "delta": self = .delta(try Delta(from: decoder))
        case "reset": self = .reset(try Reset(from: decoder))
        case "done": self = .done(try Done(from: decoder))
        case "error": self = .error(try Failure(from: decoder))
        default:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: container, debugDescription: "unknown reply kind \(kind)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: EnvelopeKeys.self)
        try container.encode(1, forKey: .version)
        try container.encode(kind, forKey: .kind)
        switch self {
        case .delta(let delta): try delta.encode(to: encoder)
        case .reset(let reset): try reset.encode(to: encoder)
        case .done(let done): try done.encode(to: encoder)
        case .error(let failure): try failure.encode(to: encoder)
        }
    }
}
