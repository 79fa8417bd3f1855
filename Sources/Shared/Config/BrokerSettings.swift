import AMQPClient
import Logging

/// Broker settings every process shares.
public struct BrokerSettings: Sendable {
    /// The broker's nodes (`AMQP_URL`, comma-separated for a cluster, or `AMQP_URLS`),
    /// shuffled once per process so that processes spread over the nodes; each
    /// connection fails over to the next node when its own fails.
    public var endpoints: [AMQPEndpoint]
    public var topology: ParleyTopology

    public init(endpoint: AMQPEndpoint, topology: ParleyTopology) {
        self.endpoints = [endpoint]
        self.topology = topology
    }

    /// The first node, for the callers that talk to one.
    public var endpoint: AMQPEndpoint { endpoints[0] }

    /// The nodes without passwords, for logs.
    public var redacted: String { endpoints.map(\.redacted).joined(separator: ",") }

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        let variable = environment.string("AMQP_URLS") != nil ? "AMQP_URLS" : "AMQP_URL"
        let text = environment.string(variable, default: "amqp://guest:guest@127.0.0.1:5672/%2f")
        var endpoints: [AMQPEndpoint] = []
        for url in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !url.isEmpty {
            guard let endpoint = AMQPEndpoint(url: url) else {
                throw ConfigurationError(
                    variable: variable,
                    problem: "must be amqp://user:password@host:5672/vhost, or several such URLs separated by commas (one per node of a cluster)"
                )
            }
            endpoints.append(endpoint)
        }
        guard !endpoints.isEmpty else { throw ConfigurationError(variable: variable, problem: "names no broker node") }
        guard Set(endpoints.map(\.virtualHost)).count == 1 else {
            throw ConfigurationError(variable: variable, problem: "names nodes of different virtual hosts; a cluster's nodes share one")
        }
        self.endpoints = endpoints.shuffled()
        var groupSize: Int?
        if environment.string("AMQP_QUORUM_GROUP_SIZE") != nil {
            groupSize = try environment.int("AMQP_QUORUM_GROUP_SIZE", default: 3, range: 1...99)
        }
        // A cluster behind one URL (a load balancer) says so with AMQP_CLUSTER=on.
        let declaredCluster = try environment.bool("AMQP_CLUSTER", default: false)
        let clustered = endpoints.count > 1 || (groupSize ?? 1) > 1 || declaredCluster
        self.topology = ParleyTopology(
            prefix: environment.string("AMQP_PREFIX", default: "parley"),
            turnDeliveryLimit: try environment.int("TURN_DELIVERY_LIMIT", default: 5, range: 1...100),
            turnQueueMaxLength: try environment.int("TURN_QUEUE_MAX_LENGTH", default: 10_000, range: 1...10_000_000),
            quorumInitialGroupSize: groupSize,
            clustered: clustered
        )
    }
}

extension Logger.Level {
    /// Reads `LOG_LEVEL` (trace, debug, info, notice, warning, error, critical).
    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        let text = environment.string("LOG_LEVEL", default: "info").lowercased()
        guard let level = Logger.Level(rawValue: text) else {
            throw ConfigurationError(
                variable: "LOG_LEVEL",
                problem: "must be one of trace, debug, info, notice, warning, error, critical; got \"\(text)\""
            )
        }
        self = level
    }
}
