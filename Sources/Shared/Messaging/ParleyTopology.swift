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
    /// The replicas the turn queue is created with (`AMQP_QUORUM_GROUP_SIZE`); nil:
    /// the broker's default, every node of the cluster at the time.
    public var quorumInitialGroupSize: Int?
    /// On a cluster the dead-letter queue is a quorum queue too: a classic queue lives on
    /// one node, and while that node is down no process could declare the topology
    /// (`NOT_FOUND - home node … is down`, seen in the fault suite's R8). On one node it
    /// stays classic, as every deployment before clusters declared it (a queue's type
    /// cannot change: docs/operations.md, "A RabbitMQ cluster").
    public var clustered: Bool

    public init(
        prefix: String = "parley",
        turnDeliveryLimit: Int = 5,
        turnQueueMaxLength: Int = 10_000,
        quorumInitialGroupSize: Int? = nil,
        clustered: Bool = false
    ) {
        self.prefix = prefix
        self.turnDeliveryLimit = turnDeliveryLimit
        self.turnQueueMaxLength = turnQueueMaxLength
        self.quorumInitialGroupSize = quorumInitialGroupSize
        self.clustered = clustered
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

    /// The turn queue: quorum (replicated, each turn confirmed once a majority of its
    /// replicas has it), dead-lettered after `turnDeliveryLimit` deliveries, refusing
    /// publishes beyond `turnQueueMaxLength`.
    public var turnsQueueArguments: [String: AMQPTableValue] {
        var arguments: [String: AMQPTableValue] = [
            "x-queue-type": .string("quorum"),
            "x-delivery-limit": .int(Int64(turnDeliveryLimit)),
            "x-dead-letter-exchange": .string(deadExchange),
            "x-max-length": .int(Int64(turnQueueMaxLength)),
            "x-overflow": .string("reject-publish"),
        ]
        if let quorumInitialGroupSize { arguments["x-quorum-initial-group-size"] = .int(Int64(quorumInitialGroupSize)) }
        return arguments
    }

    /// The dead-letter queue: classic on one node, quorum on a cluster (`clustered`).
    public var deadQueueArguments: [String: AMQPTableValue] {
        guard clustered else { return [:] }
        var arguments: [String: AMQPTableValue] = ["x-queue-type": .string("quorum")]
        if let quorumInitialGroupSize { arguments["x-quorum-initial-group-size"] = .int(Int64(quorumInitialGroupSize)) }
        return arguments
    }

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
                AMQPQueue(name: turnsQueue, arguments: turnsQueueArguments),
                AMQPQueue(name: deadQueue, arguments: deadQueueArguments),
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
