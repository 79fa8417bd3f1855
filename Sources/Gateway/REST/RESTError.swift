import Foundation
import Hummingbird
import Shared

/// An HTTP error with a code a client can act on:
/// `{"error":{"code","message","session_id"?,"turn_id"?}}`.
struct GatewayHTTPError: HTTPResponseError {
    var status: HTTPResponse.Status
    var code: ErrorCode
    var message: String
    var sessionID: UUID? = nil
    var turnID: UUID? = nil
    /// Seconds for `Retry-After`.
    var retryAfter: Int? = nil

    /// A refusal of the gateway's one error type, with the status its code means.
    init(_ error: ClientError) {
        self.init(
            status: HTTPResponse.Status(code: error.code.httpStatus),
            code: error.code,
            message: error.message,
            sessionID: error.sessionID,
            turnID: error.turnID
        )
        retryAfter = error.retryAfter
    }

    /// Runs gateway logic, turning its refusal into the HTTP error its code means.
    static func refusing<T>(_ body: () async throws(ClientError) -> T) async throws(GatewayHTTPError) -> T {
        do {
            return try await body()
        } catch {
            throw GatewayHTTPError(error)
        }
    }

    /// A refused token: 401; 503 when the identity provider's keys cannot be fetched.
    init(_ error: AuthError) {
        let status: HTTPResponse.Status =
            switch error {
            case .missingToken, .invalidToken, .expiredToken: .unauthorized
            case .keysUnavailable: .serviceUnavailable
            case .invalidUser: .badRequest
            }
        self.init(status: status, code: error.code, message: error.message)
    }

    /// 429 `rate_limited` with the time to wait.
    init(rateLimited what: String, retryAfter wait: Duration) {
        let seconds = max(1, Int(wait.timeInterval.rounded(.up)))
        self.init(status: .tooManyRequests, code: .rateLimited, message: "\(what); try again in \(seconds) s")
        retryAfter = seconds
    }

    init(status: HTTPResponse.Status, code: ErrorCode, message: String, sessionID: UUID? = nil, turnID: UUID? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.sessionID = sessionID
        self.turnID = turnID
    }

    private struct Body: Encodable {
        struct Detail: Encodable {
            var code: String
            var message: String
            var session_id: String?
            var turn_id: String?
        }

        var error: Detail
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Body(error: .init(code: code.rawValue, message: message, session_id: sessionID?.lowercased, turn_id: turnID?.lowercased))
        var headers: HTTPFields = [.contentType: "application/json"]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if let retryAfter {
            headers[.retryAfter] = "\(retryAfter)"
        } else if status == .serviceUnavailable || status == .tooManyRequests {
            headers[.retryAfter] = "2"
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: EnvelopeCoding.encode(body))))
    }
}
