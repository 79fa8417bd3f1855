import Foundation
import Shared

/// What the gateway refuses, with the code the client sees: the gateway's one error
/// type. WebSocket clients get it as an `error` frame, REST clients as a JSON error
/// with the code's HTTP status (`GatewayHTTPError`).
struct ClientError: Error, Equatable, Sendable {
    var code: ErrorCode
    var message: String
    var requestID: String? = nil
    var clientMessageID: String? = nil
    /// Set when the session or turn exists although the request failed (e.g. a
    /// REST `reply_timeout`), so the client can find it.
    var sessionID: UUID? = nil
    var turnID: UUID? = nil
    /// For `rate_limited`: seconds until the action is allowed again.
    var retryAfter: Int? = nil

    init(
        code: ErrorCode,
        message: String? = nil,
        requestID: String? = nil,
        clientMessageID: String? = nil,
        sessionID: UUID? = nil,
        turnID: UUID? = nil,
        retryAfter: Int? = nil
    ) {
        self.code = code
        self.message = message ?? code.message
        self.requestID = requestID
        self.clientMessageID = clientMessageID
        self.sessionID = sessionID
        self.turnID = turnID
        self.retryAfter = retryAfter
    }
}
