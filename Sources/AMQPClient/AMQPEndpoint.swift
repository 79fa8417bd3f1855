import Foundation

/// Where and how to reach the broker, parsed from an `amqp://` URL.
public struct AMQPEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var virtualHost: String

    public init(host: String = "127.0.0.1", port: Int = 5672, user: String = "guest", password: String = "guest", virtualHost: String = "/") {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.virtualHost = virtualHost
    }

    /// Parses `amqp://user:pass@host:port/vhost` (vhost percent-encoded, `%2f` = `/`;
    /// an empty path means `/`).
    public init?(url string: String) {
        guard let components = URLComponents(string: string), components.scheme == "amqp",
            let host = components.host, !host.isEmpty, (1...65535).contains(components.port ?? 5672)
        else { return nil }
        self.host = host
        self.port = components.port ?? 5672
        self.user = components.user?.removingPercentEncoding ?? "guest"
        self.password = components.password?.removingPercentEncoding ?? "guest"
        let path = components.percentEncodedPath
        let vhost = path.hasPrefix("/") ? String(path.dropFirst()) : path
        self.virtualHost = vhost.isEmpty ? "/" : (vhost.removingPercentEncoding ?? vhost)
    }

    /// The URL without the password, for logs.
    public var redacted: String {
        "amqp://\(user)@\(host):\(port)/\(virtualHost == "/" ? "%2f" : virtualHost)"
    }
}
