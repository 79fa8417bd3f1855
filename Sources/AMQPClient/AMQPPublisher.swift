import Logging
import ServiceLifecycle

/// Publishes with publisher confirms on a connection of its own.
///
/// `publish` returns only when the broker has confirmed the message (for a
/// persistent message to a quorum queue: written to a majority of replicas). A
/// nack, an unroutable mandatory message, a timeout or a lost connection is an
/// `AMQPError`; nothing is retried here, the caller decides.
public final class AMQPPublisher: Service, Sendable {
    private let connection: AMQPConnectionThread
    private let role: PublisherRole

    public init(
        name: String,
        endpoints: [AMQPEndpoint],
        topology: AMQPTopology,
        confirmTimeout: Duration = .seconds(10),
        logger: Logger
    ) {
        let role = PublisherRole(confirmTimeout: confirmTimeout, logger: logger)
        self.role = role
        self.connection = AMQPConnectionThread(name: name, endpoints: endpoints, topology: topology, role: role, logger: logger)
    }

    /// One broker node.
    public convenience init(
        name: String,
        endpoint: AMQPEndpoint,
        topology: AMQPTopology,
        confirmTimeout: Duration = .seconds(10),
        logger: Logger
    ) {
        self.init(name: name, endpoints: [endpoint], topology: topology, confirmTimeout: confirmTimeout, logger: logger)
    }

    public var isConnected: Bool { connection.isConnected }

    /// Why the last connection attempt failed, for health reports.
    public var lastError: String { connection.lastError }

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
    }

    /// Starts the connection without a service group (tests, tools).
    public func start() { connection.start() }

    public func shutdown() async {
        connection.stop()
        await connection.waitUntilStopped()
    }

    /// Publishes without waiting for the broker's confirm: returns once the message
    /// is written to the connection. For messages whose loss is harmless (streamed
    /// deltas, which the final reply repeats); order with confirmed publishes of this
    /// publisher is kept, as all go through one channel.
    public func send(_ message: AMQPOutgoingMessage) async throws(AMQPError) {
        let role = self.role
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, AMQPError>, Never>) in
            connection.submit(
                .init(
                    run: { wire throws(AMQPError) in
                        try role.publish(message, on: wire) { _ in }
                        continuation.resume(returning: .success(()))
                    },
                    fail: { continuation.resume(returning: .failure($0)) }
                )
            )
        }
        try result.get()
    }

    public func publish(_ message: AMQPOutgoingMessage) async throws(AMQPError) {
        let role = self.role
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, AMQPError>, Never>) in
            connection.submit(
                .init(
                    run: { wire throws(AMQPError) in
                        try role.publish(message, on: wire) { continuation.resume(returning: $0) }
                    },
                    fail: { continuation.resume(returning: .failure($0)) }
                )
            )
        }
        try result.get()
    }
}

/// Tracks outstanding confirms. Confined to the connection thread.
final class PublisherRole: AMQPConnectionRole, @unchecked Sendable {
    private struct Waiter {
        var message: AMQPOutgoingMessage
        var deadline: ContinuousClock.Instant
        var complete: (Result<Void, AMQPError>) -> Void
    }

    private let confirmTimeout: Duration
    private let logger: Logger
    private var nextDeliveryTag: UInt64 = 1
    private var waiters: [UInt64: Waiter] = [:]
    private var returnedMessages: [String: String] = [:]
    private var isBlocked = false

    init(confirmTimeout: Duration, logger: Logger) {
        self.confirmTimeout = confirmTimeout
        self.logger = logger
    }

    func publish(
        _ message: AMQPOutgoingMessage,
        on wire: AMQPWire,
        complete: @escaping (Result<Void, AMQPError>) -> Void
    ) throws(AMQPError) {
        guard !isBlocked else {
            // A blocked broker does not read our socket: writing could wedge the thread.
            complete(.failure(.rejectedByBroker("the broker is blocking publishers (memory or disk alarm)")))
            return
        }
        try wire.publish(message)
        let tag = nextDeliveryTag
        nextDeliveryTag += 1
        waiters[tag] = Waiter(message: message, deadline: .now.advanced(by: confirmTimeout), complete: complete)
    }

    func didConnect(_ wire: AMQPWire, generation: Int) throws(AMQPError) {
        try wire.enablePublisherConfirms()
        nextDeliveryTag = 1
        isBlocked = false
    }

    func handle(_ frame: AMQPIncomingFrame, wire: AMQPWire) throws(AMQPError) {
        switch frame {
        case .confirm(let tag, let multiple, let acked):
            let tags = multiple ? waiters.keys.filter { $0 <= tag } : [tag]
            for tag in tags.sorted() {
                guard let waiter = waiters.removeValue(forKey: tag) else { continue }
                let message = waiter.message
                if !acked {
                    waiter.complete(.failure(.nacked(exchange: message.exchange, routingKey: message.routingKey)))
                } else if let reason = returnedMessages.removeValue(forKey: message.messageID) {
                    waiter.complete(.failure(.unroutable(exchange: message.exchange, routingKey: message.routingKey, reason: reason)))
                } else {
                    waiter.complete(.success(()))
                }
            }
        case .returned(let messageID, let reason):
            returnedMessages[messageID] = reason
        case .blocked(let blocked):
            isBlocked = blocked
            logger.warning(blocked ? "the broker blocked publishing (resource alarm)" : "the broker unblocked publishing")
        case .delivery, .consumerCancelled, .other:
            break
        }
    }

    func didDisconnect(_ error: AMQPError) {
        let lost: AMQPError = error == .shutDown ? .shutDown : .connectionLost(error.description)
        for (_, waiter) in waiters { waiter.complete(.failure(lost)) }
        waiters = [:]
        returnedMessages = [:]
    }

    func checkDeadlines(now: ContinuousClock.Instant) {
        guard !waiters.isEmpty else { return }
        for (tag, waiter) in waiters where waiter.deadline <= now {
            waiters[tag] = nil
            let seconds = Int(confirmTimeout.components.seconds)
            waiter.complete(.failure(.confirmTimeout(exchange: waiter.message.exchange, seconds: seconds)))
        }
    }
}
