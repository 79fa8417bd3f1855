import AMQPClient

/// Parley's exchanges and queues (docs/architecture.md, "Processes and queues").
/// `prefix` is `parley` in production; tests use their own prefix so that they never
/// share queues.
public struct ParleyTopology: Sendable {
    public var prefix: String
    /// Deliveries of one turn before the broker dead-letters it.
    public var turnDeliveryLimit: Int
    /// Turns waiting in the queue before the broker nacks new ones (back-pressure).
    public var turnQueueMaxLength: Int

    public init(prefix: String = "parley", turnDeliveryLimit: Int = 5, turnQueueMaxLength: Int = 10_000) {
        self.prefix = prefix
        self.turnDeliveryLimit = turnDeliveryLimit
        self.turnQueueMaxLength = turnQueueMaxLength
    }

    public var turnsExchange: String { "\(prefix).turns" }
    public var turnsQueue: String { "\(prefix).turns" }
    public var turnRoutingKey: String { "turn" }
    public var deadExchange: String { "\(prefix).dead" }
    public var deadQueue: String { "\(prefix).dead" }
    public var repliesExchange: String { "\(prefix).replies" }
    public var controlExchange: String { "\(prefix).control" }

    public func gatewayQueue(gatewayID: String) -> String { "\(prefix).gateway.\(gatewayID)" }
    public func controlQueue(workerID: String) -> String { "\(prefix).control.\(workerID)" }

    /// The durable part every process declares.
    public var shared: AMQPTopology {
        AMQPTopology(
            exchanges: [
                AMQPExchange(name: turnsExchange, kind: .direct),
                AMQPExchange(name: deadExchange, kind: .fanout),
                AMQPExchange(name: repliesExchange, kind: .topic),
                AMQPExchange(name: controlExchange, kind: .fanout),
            ],
            queues: [
                AMQPQueue(
                    name: turnsQueue,
                    arguments: [
                        "x-queue-type": .string("quorum"),
                        "x-delivery-limit": .int(Int64(turnDeliveryLimit)),
                        "x-dead-letter-exchange": .string(deadExchange),
                        "x-max-length": .int(Int64(turnQueueMaxLength)),
                        "x-overflow": .string("reject-publish"),
                    ]
                ),
                AMQPQueue(name: deadQueue),
            ],
            bindings: [
                AMQPBinding(queue: turnsQueue, exchange: turnsExchange, routingKey: turnRoutingKey),
                AMQPBinding(queue: deadQueue, exchange: deadExchange, routingKey: ""),
            ]
        )
    }

    /// The shared topology plus one worker's exclusive queue of control signals.
    public func worker(id: String) -> AMQPTopology {
        var topology = shared
        let queue = controlQueue(workerID: id)
        topology.queues.append(AMQPQueue(name: queue, durable: false, exclusive: true, autoDelete: true))
        topology.bindings.append(AMQPBinding(queue: queue, exchange: controlExchange, routingKey: ""))
        return topology
    }

    /// The shared topology plus one gateway's exclusive reply queue (bound per
    /// session at run time, not here).
    public func gateway(id: String) -> AMQPTopology {
        var topology = shared
        topology.queues.append(AMQPQueue(name: gatewayQueue(gatewayID: id), durable: false, exclusive: true, autoDelete: true))
        return topology
    }
}
