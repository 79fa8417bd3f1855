import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle

/// The gRPC listener on `GRPC_HOST:GRPC_PORT` (HTTP/2 without TLS: terminate TLS in
/// front of it, as for the WebSocket port). A graceful shutdown stops it taking new
/// calls and lets the running ones finish.
struct GRPCListener: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let transport: HTTP2ServerTransport.Posix
    let logger: Logger

    init(host: String, port: Int, services: [any RegistrableRPCService], logger: Logger) {
        transport = HTTP2ServerTransport.Posix(address: .ipv4(host: host, port: port), transportSecurity: .plaintext)
        server = GRPCServer(transport: transport, services: services)
        self.logger = logger
    }

    /// Where it listens, once it does (the port is the kernel's choice for port 0).
    var port: Int? {
        get async { try? await transport.listeningAddress.ipv4?.port }
    }

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                if let port = await port { logger.info("gRPC listening", metadata: ["grpc_port": "\(port)"]) }
            }
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}
