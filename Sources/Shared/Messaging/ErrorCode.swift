/// Every error code a client can be sent — in an `error` frame, a REST error body, or
/// a worker's failure reply — with the HTTP status it means on the REST API and the
/// text a client gets when the place that refuses has nothing more specific to say.
/// The table in docs/protocol.md, "Error codes", lists the same codes (a test keeps
/// them equal).
///
/// On the wire a code is its raw value. A code this build does not know (a newer
/// worker's, during a rolling upgrade) is read as `unavailable`, so that its reply is
/// still shown and not dropped as undecodable.
public enum ErrorCode: String, Sendable, CaseIterable, Codable {
    // What the client sent
    case malformedFrame = "malformed_frame"
    case malformedRequest = "malformed_request"
    case unknownType = "unknown_type"
    case unsupportedFrame = "unsupported_frame"
    case emptyContent = "empty_content"
    case invalidContent = "invalid_content"
    case contentTooLong = "content_too_long"
    case bodyTooLarge = "body_too_large"
    case upgradeRequired = "upgrade_required"
    // Who the client is
    case missingToken = "missing_token"
    case invalidToken = "invalid_token"
    case tokenExpired = "token_expired"
    case forbidden
    case adminRequired = "admin_required"
    case originNotAllowed = "origin_not_allowed"
    case invalidSignature = "invalid_signature"
    // Accounts (ACCOUNTS=on)
    case accountsDisabled = "accounts_disabled"
    case invalidCredentials = "invalid_credentials"
    case accountExists = "account_exists"
    case weakPassword = "weak_password"
    // Limits
    case rateLimited = "rate_limited"
    case tooManySockets = "too_many_sockets"
    case tooManySessions = "too_many_sessions"
    case tooManyPending = "too_many_pending"
    case missedReplies = "missed_replies"
    // Sessions and turns
    case sessionNotFound = "session_not_found"
    case sessionNotOpen = "session_not_open"
    case sessionCompleted = "session_completed"
    case sessionBusy = "session_busy"
    case topicNotFound = "topic_not_found"
    case courseNotFound = "course_not_found"
    case turnNotFound = "turn_not_found"
    case cancelled
    // Parley's own parts
    case overloaded
    case unavailable
    case unconfirmed
    case expired
    case replyTimeout = "reply_timeout"
    case platformUnavailable = "platform_unavailable"
    // The language model
    case llmUnavailable = "llm_unavailable"
    case llmRateLimited = "llm_rate_limited"
    case llmQuotaExceeded = "llm_quota_exceeded"
    case llmRejected = "llm_rejected"
    case llmBlocked = "llm_blocked"
    case llmBadResponse = "llm_bad_response"

    public init(from decoder: any Decoder) throws {
        self = Self(rawValue: try decoder.singleValueContainer().decode(String.self)) ?? .unavailable
    }

    /// The status of a REST response with this code.
    public var httpStatus: Int {
        switch self {
        case .malformedFrame, .malformedRequest, .unknownType, .unsupportedFrame, .emptyContent, .invalidContent, .weakPassword: 400
        case .missingToken, .invalidToken, .tokenExpired, .invalidCredentials, .invalidSignature: 401
        case .forbidden, .adminRequired, .originNotAllowed: 403
        case .sessionNotFound, .topicNotFound, .courseNotFound, .turnNotFound, .accountsDisabled: 404
        case .sessionCompleted, .sessionBusy, .sessionNotOpen, .cancelled, .missedReplies, .accountExists: 409
        case .contentTooLong, .bodyTooLarge: 413
        case .upgradeRequired: 426
        case .rateLimited, .tooManySockets, .tooManySessions, .tooManyPending: 429
        case .overloaded, .unavailable: 503
        case .unconfirmed, .expired, .replyTimeout: 504
        case .platformUnavailable, .llmUnavailable, .llmRateLimited, .llmQuotaExceeded, .llmRejected, .llmBlocked, .llmBadResponse: 502
        }
    }

    /// What a client is told when nothing more specific is known.
    public var message: String {
        switch self {
        case .malformedFrame: "the frame is not valid JSON of a known shape"
        case .malformedRequest: "the request is not valid"
        case .unknownType: "type must be start, message, resume or cancel"
        case .unsupportedFrame: "send text frames (JSON or plain text), not binary"
        case .emptyContent: "the message is empty"
        case .invalidContent: "the message contains a NUL character"
        case .contentTooLong: "the message is too long"
        case .bodyTooLarge: "the request body is too large"
        case .upgradeRequired: "GET /ws must be a WebSocket upgrade"
        case .missingToken: "send a bearer token in the Authorization header or as ?token="
        case .invalidToken: "the token is not valid"
        case .tokenExpired: "the token has expired"
        case .forbidden: "this belongs to another user"
        case .adminRequired: "this needs an administrator key (ADMIN_API_KEYS)"
        case .originNotAllowed: "this gateway does not take requests from pages of your origin (ALLOWED_ORIGINS)"
        case .invalidSignature: "the X-Hub-Signature-256 header is not the body's HMAC with the app secret (WHATSAPP_APP_SECRET)"
        case .accountsDisabled: "this gateway has no accounts (ACCOUNTS=off); sign in with a token"
        case .invalidCredentials: "the user name or the password is wrong"
        case .accountExists: "that user name is taken; choose another"
        case .weakPassword: "the password is too short"
        case .rateLimited: "too many requests; try again shortly"
        case .tooManySockets: "too many sockets are open"
        case .tooManySessions: "this socket uses its most sessions; open another socket"
        case .tooManyPending: "too many messages of this session are waiting for the reply in progress; wait for it"
        case .missedReplies: "replies were missed; send resume again from the last message id you have"
        case .sessionNotFound: "there is no such session"
        case .sessionNotOpen: "attach to the session before sending to it"
        case .sessionCompleted: "the session is completed and takes no more messages"
        case .sessionBusy: "the session's previous message is still being answered; send this one again later"
        case .topicNotFound: "there is no such topic"
        case .courseNotFound: "there is no such course"
        case .turnNotFound: "there is no such turn in progress"
        case .cancelled: "the message was cancelled"
        case .overloaded: "Parley is overloaded; your message was not accepted, try again shortly"
        case .unavailable: "Parley is unavailable right now; try again shortly"
        case .unconfirmed: "the message broker did not confirm your message; it may still be answered"
        case .expired: "the message could not be answered before its deadline; send it again"
        case .replyTimeout: "no reply arrived in time; the message was accepted and may still be answered later"
        case .platformUnavailable: "the learning platform is unavailable; try again shortly"
        case .llmUnavailable: "the language model is unavailable; nothing was stored, send your message again"
        case .llmRateLimited: "the language model is rate limiting; send your message again later"
        case .llmQuotaExceeded: "the language model account has no quota left"
        case .llmRejected: "the language model refused the request"
        case .llmBlocked: "the language model's safety filters blocked this message"
        case .llmBadResponse: "the language model sent an unreadable answer"
        }
    }
}
