import GRPCCore
import Shared

/// A Parley refusal as a gRPC status: the code that means the same thing, the
/// client-facing message, and the Parley code itself in the trailing metadata
/// `parley-error-code` (the table in docs/protocol.md, "gRPC").
extension RPCError {
    static let parleyCodeKey = "parley-error-code"

    init(_ error: ClientError) {
        var metadata: Metadata = [Self.parleyCodeKey: .string(error.code.rawValue)]
        if let sessionID = error.sessionID { metadata.addString(sessionID.lowercased, forKey: "parley-session-id") }
        if let turnID = error.turnID { metadata.addString(turnID.lowercased, forKey: "parley-turn-id") }
        if let retryAfter = error.retryAfter { metadata.addString("\(retryAfter)", forKey: "retry-after") }
        self.init(code: Self.code(for: error.code), message: error.message, metadata: metadata)
    }

    init(_ error: AuthError) {
        self.init(ClientError(code: error.code, message: error.message))
    }

    /// The gRPC status code of each Parley error code.
    static func code(for code: ErrorCode) -> RPCError.Code {
        switch code {
        case .malformedFrame, .malformedRequest, .unknownType, .unsupportedFrame, .emptyContent, .invalidContent, .contentTooLong, .bodyTooLarge,
            .upgradeRequired, .weakPassword:
            .invalidArgument
        case .missingToken, .invalidToken, .tokenExpired, .invalidCredentials, .invalidSignature: .unauthenticated
        case .forbidden, .adminRequired, .originNotAllowed: .permissionDenied
        case .sessionNotFound, .topicNotFound, .courseNotFound, .turnNotFound, .accountsDisabled: .notFound
        case .accountExists: .alreadyExists
        case .sessionCompleted, .sessionNotOpen, .missedReplies, .llmBlocked: .failedPrecondition
        case .sessionBusy: .aborted
        case .cancelled: .cancelled
        case .rateLimited, .tooManySockets, .tooManySessions, .tooManyPending, .llmRateLimited, .llmQuotaExceeded: .resourceExhausted
        case .overloaded, .unavailable, .platformUnavailable, .llmUnavailable: .unavailable
        case .unconfirmed, .expired, .replyTimeout: .deadlineExceeded
        case .llmRejected, .llmBadResponse: .internalError
        }
    }
}
