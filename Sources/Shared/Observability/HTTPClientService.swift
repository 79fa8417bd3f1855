import AsyncHTTPClient
import ServiceLifecycle

/// Shuts a shared HTTP client down with the service group.
public struct HTTPClientService: Service {
    let client: HTTPClient

    public init(client: HTTPClient) {
        self.client = client
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
