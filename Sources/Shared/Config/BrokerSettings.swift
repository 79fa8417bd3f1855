import AMQPClient
import Logging

/// Broker settings every process shares.
public struct BrokerSettings: Sendable {
    public var endpoint: AMQPEndpoint
    public var topology: ParleyTopology

    public init(endpoint: AMQPEndpoint, topology: ParleyTopology) {
        self.endpoint = endpoint
        self.topology = topology
    }

    public init(environment: EnvironmentReader) throws(ConfigurationError) {
        let url = environment.string("AMQP_URL", default: "amqp://guest:guest@127.0.0.1:5672/%2f")
        guard let endpoint = AMQPEndpoint(url: url) else {
            throw ConfigurationError(variable: "AMQP_URL", problem: "must look like amqp://user:password@host:5672/vhost")
        }
        self.endpoint = endpoint
        self.topology = ParleyTopology(
            prefix: environment.string("AMQP_PREFIX", default: "parley"),
            turnDeliveryLimit: try environment.int("TURN_DELIVERY_LIMIT", default: 5, range: 1...100),
            turnQueueMaxLength: try environment.int("TURN_QUEUE_MAX_LENGTH", default: 10_000, range: 1...10_000_000)
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
