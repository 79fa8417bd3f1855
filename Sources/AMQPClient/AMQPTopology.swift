/// An exchange to declare.
public struct AMQPExchange: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case direct, topic, fanout
    }

    public var name: String
    public var kind: Kind
    public var durable: Bool
    public var arguments: [String: AMQPTableValue]

    public init(name: String, kind: Kind, durable: Bool = true, arguments: [String: AMQPTableValue] = [:]) {
        self.name = name
        self.kind = kind
        self.durable = durable
        self.arguments = arguments
    }
}

/// A queue to declare.
public struct AMQPQueue: Sendable, Hashable {
    public var name: String
    public var durable: Bool
    public var exclusive: Bool
    public var autoDelete: Bool
    public var arguments: [String: AMQPTableValue]

    public init(name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false, arguments: [String: AMQPTableValue] = [:]) {
        self.name = name
        self.durable = durable
        self.exclusive = exclusive
        self.autoDelete = autoDelete
        self.arguments = arguments
    }
}

public struct AMQPBinding: Sendable, Hashable {
    public var queue: String
    public var exchange: String
    public var routingKey: String

    public init(queue: String, exchange: String, routingKey: String) {
        self.queue = queue
        self.exchange = exchange
        self.routingKey = routingKey
    }
}

/// Declarations applied, in order, on every (re)connect. Declaring is idempotent.
public struct AMQPTopology: Sendable {
    public var exchanges: [AMQPExchange]
    public var queues: [AMQPQueue]
    public var bindings: [AMQPBinding]

    public init(exchanges: [AMQPExchange] = [], queues: [AMQPQueue] = [], bindings: [AMQPBinding] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }

    func declare(on wire: AMQPWire) throws(AMQPError) {
        for exchange in exchanges { try wire.declare(exchange: exchange) }
        for queue in queues { try wire.declare(queue: queue) }
        for binding in bindings {
            try wire.bind(queue: binding.queue, exchange: binding.exchange, routingKey: binding.routingKey)
        }
    }
}
