import Logging
import ServiceLifecycle
import Synchronization

/// Consumes one queue on a connection of its own, with manual acknowledgement and
/// a prefetch limit (the most unsettled deliveries the broker hands this consumer).
///
/// `deliveries` goes on across reconnects; a delivery received before a reconnect
/// can no longer be settled (the broker already put it back in the queue), and
/// `ack`/`reject` say so with `AMQPError.staleDelivery`. Routing keys bound with
/// `bind` are re-bound after every reconnect.
public final class AMQPConsumer: Service, Sendable {
    public let deliveries: AsyncStream<AMQPDelivery>
    private let connection: AMQPConnectionThread
    private let role: ConsumerRole

    public init(
        name: String,
        endpoints: [AMQPEndpoint],
        topology: AMQPTopology,
        queue: String,
        prefetch: UInt16,
        logger: Logger
    ) {
        let (stream, continuation) = AsyncStream.makeStream(of: AMQPDelivery.self)
        let role = ConsumerRole(queue: queue, prefetch: prefetch, deliveries: continuation)
        self.deliveries = stream
        self.role = role
        self.connection = AMQPConnectionThread(name: name, endpoints: endpoints, topology: topology, role: role, logger: logger)
    }

    /// One broker node.
    public convenience init(
        name: String,
        endpoint: AMQPEndpoint,
        topology: AMQPTopology,
        queue: String,
        prefetch: UInt16,
        logger: Logger
    ) {
        self.init(name: name, endpoints: [endpoint], topology: topology, queue: queue, prefetch: prefetch, logger: logger)
    }

    public var isConnected: Bool { connection.isConnected }
    public var lastError: String { connection.lastError }
    /// Counts the connections made so far: a change means the consumer reconnected
    /// (an exclusive queue was then declared anew, and messages sent to the old one
    /// in between are gone).
    public var connectionGeneration: Int { role.currentGeneration }

    public func run() async {
        connection.start()
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await connection.waitUntilStopped()
            } onGracefulShutdown: {
                self.connection.stop()
            }
        } onCancel: {
            self.connection.stop()
        }
        role.finish()
    }

    /// Starts the connection without a service group (tests, tools).
    public func start() { connection.start() }

    public func shutdown() async {
        connection.stop()
        await connection.waitUntilStopped()
        role.finish()
    }

    /// Whether `delivery` came on the current connection (and so can still be settled).
    public func canSettle(_ delivery: AMQPDelivery) -> Bool {
        (try? role.checkCurrent(delivery)) != nil
    }

    public func ack(_ delivery: AMQPDelivery) async throws(AMQPError) {
        let role = self.role
        try await perform { wire throws(AMQPError) in
            try role.checkCurrent(delivery)
            try wire.ack(deliveryTag: delivery.deliveryTag)
        }
    }

    /// `requeue: false` dead-letters the message (when its queue has a dead-letter exchange).
    public func reject(_ delivery: AMQPDelivery, requeue: Bool) async throws(AMQPError) {
        let role = self.role
        try await perform { wire throws(AMQPError) in
            try role.checkCurrent(delivery)
            try wire.reject(deliveryTag: delivery.deliveryTag, requeue: requeue)
        }
    }

    /// Binds the consumed queue to `exchange` with `routingKey`, now and after every reconnect.
    public func bind(exchange: String, routingKey: String) async throws(AMQPError) {
        let binding = AMQPBinding(queue: role.queue, exchange: exchange, routingKey: routingKey)
        role.remember(binding)
        do {
            try await perform { wire throws(AMQPError) in
                try wire.bind(queue: binding.queue, exchange: binding.exchange, routingKey: binding.routingKey)
            }
        } catch {
            // Not bound now: do not bind it behind the caller's back on a reconnect.
            role.forget(binding)
            throw error
        }
    }

    public func unbind(exchange: String, routingKey: String) async throws(AMQPError) {
        let binding = AMQPBinding(queue: role.queue, exchange: exchange, routingKey: routingKey)
        role.forget(binding)
        try await perform { wire throws(AMQPError) in
            try wire.unbind(queue: binding.queue, exchange: binding.exchange, routingKey: binding.routingKey)
        }
    }

    private func perform(_ body: @escaping @Sendable (AMQPWire) throws(AMQPError) -> Void) async throws(AMQPError) {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, AMQPError>, Never>) in
            connection.submit(
                .init(
                    run: { wire throws(AMQPError) in
                        do throws(AMQPError) {
                            try body(wire)
                            continuation.resume(returning: .success(()))
                        } catch .staleDelivery(let why) {
                            // Not a connection failure: report it to the caller only.
                            continuation.resume(returning: .failure(.staleDelivery(why)))
                        }
                    },
                    fail: { continuation.resume(returning: .failure($0)) }
                )
            )
        }
        try result.get()
    }
}

/// Consumer state. `generation` and the stream are used on the connection thread;
/// the wanted bindings are shared with callers through a mutex.
final class ConsumerRole: AMQPConnectionRole, @unchecked Sendable {
    let queue: String
    private let prefetch: UInt16
    private let continuation: AsyncStream<AMQPDelivery>.Continuation
    private let generation = Atomic<Int>(0)
    private let bindings = Mutex<Set<AMQPBinding>>([])

    init(queue: String, prefetch: UInt16, deliveries: AsyncStream<AMQPDelivery>.Continuation) {
        self.queue = queue
        self.prefetch = prefetch
        self.continuation = deliveries
    }

    var currentGeneration: Int { generation.load(ordering: .acquiring) }

    func remember(_ binding: AMQPBinding) { _ = bindings.withLock { $0.insert(binding) } }
    func forget(_ binding: AMQPBinding) { _ = bindings.withLock { $0.remove(binding) } }
    func finish() { continuation.finish() }

    func checkCurrent(_ delivery: AMQPDelivery) throws(AMQPError) {
        guard delivery.connectionGeneration == generation.load(ordering: .acquiring) else {
            throw .staleDelivery("delivery \(delivery.deliveryTag) came on a connection that has since been replaced; the broker requeued it")
        }
    }

    func didConnect(_ wire: AMQPWire, generation: Int) throws(AMQPError) {
        self.generation.store(generation, ordering: .releasing)
        try wire.setPrefetch(prefetch)
        for binding in bindings.withLock({ $0 }) {
            try wire.bind(queue: binding.queue, exchange: binding.exchange, routingKey: binding.routingKey)
        }
        try wire.consume(queue: queue, consumerTag: "", autoAck: false)
    }

    func handle(_ frame: AMQPIncomingFrame, wire: AMQPWire) throws(AMQPError) {
        switch frame {
        case .delivery(let message):
            continuation.yield(
                AMQPDelivery(
                    deliveryTag: message.deliveryTag,
                    connectionGeneration: generation.load(ordering: .acquiring),
                    redelivered: message.redelivered,
                    exchange: message.exchange,
                    routingKey: message.routingKey,
                    messageID: message.messageID,
                    type: message.type,
                    headers: message.headers,
                    body: message.body
                )
            )
        case .consumerCancelled:
            throw .connectionLost("the broker cancelled the consumer of \(queue) (queue deleted?)")
        case .confirm, .returned, .blocked, .other:
            break
        }
    }

    func didDisconnect(_ error: AMQPError) {}
    func checkDeadlines(now: ContinuousClock.Instant) {}
}
