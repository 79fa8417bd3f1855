import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The gateway's request context: Hummingbird's WebSocket context plus the client's
/// address, which the per-address limits key on (the TCP peer: behind a proxy, that
/// is the proxy — see docs/protocol.md, "Limits").
struct GatewayRequestContext: RequestContext, WebSocketRequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let remoteAddress: SocketAddress?

    init(source: Source) {
        coreContext = .init(source: source)
        webSocket = .init()
        remoteAddress = source.channel.remoteAddress
    }

    /// The address as a limiter key (the IP without the port).
    var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}
