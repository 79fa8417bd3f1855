import Hummingbird
import HummingbirdWebSocket
import Shared

/// `GET /ws`: the upgrade, and the checks a socket passes before `ConnectionHandler`
/// serves it — origin, new sockets per address, the token, sockets per user.
///
/// Each refusal comes after the upgrade, as an error frame and a close code:
/// HummingbirdWebSocket cannot answer a refused upgrade with a status and body of
/// ours (it sends a plain 400), and a browser could not read them. A plain GET
/// without the upgrade gets the token's error as HTTP 401, else 426.
struct WebSocketEndpoint: Sendable {
    let settings: GatewaySettings
    let authenticator: Authenticator
    let limits: AbuseLimits
    let connections: ConnectionHandler

    func register(on router: Router<GatewayRequestContext>) {
        router.ws("/ws") { request, _ in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                _ = try await authenticator.userID(of: request)
                throw GatewayHTTPError(status: .upgradeRequired, code: .upgradeRequired, message: "GET /ws must be a WebSocket upgrade")
            }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            let format: SocketFormat
            do throws(ClientError) {
                format = try SocketFormat(query: context.request.uri.query)
            } catch {
                try await refuse(outbound, .error(code: error.code, message: error.message), in: .json, tryAgainLater: false, reason: error.code)
                return
            }
            guard let userID = try await admit(context, outbound: outbound, format: format) else { return }
            defer { limits.sockets.leave(userID) }
            let channel: Channel = context.request.headers[.origin] == nil ? .websocket : .web
            try await connections.serve(inbound: inbound, outbound: outbound, userID: userID, format: format, channel: channel)
        }
    }

    /// The socket's user, once every check passed and the socket holds a place in
    /// the per-user count (`limits.sockets.leave` gives it back); nil when refused.
    private func admit(
        _ context: WebSocketRouterContext<GatewayRequestContext>,
        outbound: WebSocketOutboundWriter,
        format: SocketFormat
    ) async throws -> String? {
        // Refusals are written in the format the socket asked for.
        func turnAway(_ frame: ServerFrame, tryAgainLater: Bool, reason: ErrorCode) async throws {
            try await refuse(outbound, frame, in: format, tryAgainLater: tryAgainLater, reason: reason)
        }
        // A browser page of another site (ALLOWED_ORIGINS).
        let origin = context.request.headers[.origin]
        guard settings.allowsOrigin(origin) else {
            let message = "this gateway does not take sockets from pages of \(origin ?? "?") (ALLOWED_ORIGINS)"
            try await turnAway(.error(code: .originNotAllowed, message: message), tryAgainLater: false, reason: .originNotAllowed)
            return nil
        }
        if let wait = limits.socketsPerAddress.take(context.requestContext.clientAddress) {
            let refusal = GatewayHTTPError(rateLimited: "too many new connections from your address", retryAfter: wait)
            let frame = ServerFrame.error(code: refusal.code, message: refusal.message, context: .init(retryAfter: refusal.retryAfter))
            try await turnAway(frame, tryAgainLater: true, reason: refusal.code)
            return nil
        }
        let userID: String
        do throws(GatewayHTTPError) {
            userID = try await authenticator.userID(of: context.request)
        } catch {
            // A token refused is a policy violation; keys that cannot be fetched, "try again later".
            let tryAgainLater = error.status == .serviceUnavailable
            try await turnAway(.error(code: error.code, message: error.message), tryAgainLater: tryAgainLater, reason: error.code)
            return nil
        }
        if let refusal = limits.sockets.admit(userID) {
            let message =
                switch refusal {
                case .gatewayFull(let limit): "this gateway holds its most sockets (\(limit)); try again later or another gateway"
                case .userFull(let limit): "you have \(limit) sockets open, the most a user may; close one"
                }
            try await turnAway(.error(code: .tooManySockets, message: message), tryAgainLater: true, reason: .tooManySockets)
            return nil
        }
        return userID
    }

    /// Sends the refusal and closes: 1013 (try again later) or 1008 (policy violation).
    private func refuse(
        _ outbound: WebSocketOutboundWriter,
        _ frame: ServerFrame,
        in format: SocketFormat,
        tryAgainLater: Bool,
        reason: ErrorCode
    ) async throws {
        if let text = format.render(frame) { try await outbound.write(.text(text)) }
        try await outbound.close(tryAgainLater ? .unknown(1013) : .policyViolation, reason: reason.rawValue)
    }
}

extension Authenticator {
    /// The user a request's token (or, with authentication off, `?user=`) names.
    func userID(of request: Request) async throws(GatewayHTTPError) -> String {
        let token = Self.token(authorization: request.headers[.authorization], query: request.uri.query)
        do {
            return try await userID(token: token, requestedUser: Self.queryValue("user", in: request.uri.query))
        } catch {
            throw GatewayHTTPError(error)
        }
    }
}
