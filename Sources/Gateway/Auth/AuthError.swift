import Shared

/// Why a token was refused.
enum AuthError: Error, Equatable, Sendable {
    case missingToken
    case invalidToken(String)
    case expiredToken
    /// The token needs a key of the identity provider and its key set cannot be
    /// fetched: the token may be fine, the client should try again.
    case keysUnavailable(String)
    /// `?user=` (authentication off) is not a possible user id.
    case invalidUser

    var code: ErrorCode {
        switch self {
        case .missingToken: .missingToken
        case .invalidToken: .invalidToken
        case .expiredToken: .tokenExpired
        case .keysUnavailable: .unavailable
        case .invalidUser: .malformedRequest
        }
    }

    var message: String {
        switch self {
        case .missingToken: "send a bearer token in the Authorization header or as ?token="
        case .invalidToken(let why): "the token is not valid: \(why)"
        case .expiredToken: "the token has expired"
        // The reason (an internal URL, a network error) is in the gateway's log, not here.
        case .keysUnavailable: "the identity provider's signing keys cannot be fetched; try again shortly"
        case .invalidUser: "?user= must be \(UserID.rule)"
        }
    }

    /// Whether the gateway, not the client, is at fault: the client should try again.
    var isTemporary: Bool {
        if case .keysUnavailable = self { return true }
        return false
    }
}
