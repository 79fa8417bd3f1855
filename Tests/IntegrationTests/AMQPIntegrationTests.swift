import AMQPClient
import Foundation
import Testing

@testable import Shared

@Suite("RabbitMQ (real broker)", .serialized)
struct AMQPIntegrationTests {
    @Test func confirmedPublishesAreConsumedInOrderAndAcked() async throws {
        let broker = try BrokerFixture()
        let publisher = broker.publisher()
        let consumer = broker.consumer(prefetch: 100)
        defer {
            Task {
                await publisher.shutdown()
                await consumer.shutdown()
            }
        }
        try await publisher.waitUntilConnected()
        for index in 0..<50 {
            try await publisher.publish(broker.turnMessage("m\(index)", id: "id\(index)"))
        }
        var received: [String] = []
        var iterator = consumer.deliveries.makeAsyncIterator()
        while received.count < 50, let delivery = await iterator.next() {
            received.append(String(decoding: delivery.body, as: UTF8.self))
            #expect(delivery.messageID == "id\(received.count - 1)")
            #expect(!delivery.redelivered)
            try await consumer.ack(delivery)
        }
        #expect(received == (0..<50).map { "m\($0)" })
    }

    @Test func anUnsettledDeliveryIsRedeliveredToAnotherConsumer() async throws {
        let broker = try BrokerFixture()
        let publisher = broker.publisher()
        try await publisher.waitUntilConnected()
        try await publisher.publish(broker.turnMessage("crash me", id: "t1"))
        let first = broker.consumer()
        let delivery = try #require(try await next(of: first.deliveries))
        #expect(delivery.messageID == "t1")
        await first.shutdown()  // like a worker dying before it acks

        let second = broker.consumer()
        defer {
            Task {
                await publisher.shutdown()
                await second.shutdown()
            }
        }
        let again = try #require(try await next(of: second.deliveries))
        #expect(again.messageID == "t1")
        #expect(again.redelivered)
        #expect(again.headers["x-delivery-count"] == "1")
        try await second.ack(again)
        // Settling a delivery of the closed connection is refused, not sent on the new one.
        await #expect(throws: AMQPError.self) { try await first.ack(delivery) }
    }

    @Test func aRejectedTurnIsDeadLetteredNotRedelivered() async throws {
        let broker = try BrokerFixture()
        let publisher = broker.publisher()
        let consumer = broker.consumer()
        let dead = broker.consumer(queue: broker.topology.deadQueue)
        defer {
            Task {
                await publisher.shutdown()
                await consumer.shutdown()
                await dead.shutdown()
            }
        }
        try await publisher.waitUntilConnected()
        try await publisher.publish(broker.turnMessage("poison", id: "p1"))
        let delivery = try #require(try await next(of: consumer.deliveries))
        try await consumer.reject(delivery, requeue: false)
        let deadLettered = try #require(try await next(of: dead.deliveries))
        #expect(deadLettered.messageID == "p1")
        #expect(deadLettered.headers["x-first-death-reason"] == "rejected")
        #expect(deadLettered.headers["x-first-death-queue"] == broker.topology.turnsQueue)
        try await dead.ack(deadLettered)
    }

    @Test func aTurnOverItsDeliveryLimitIsDeadLettered() async throws {
        let broker = try BrokerFixture(deliveryLimit: 2)
        let publisher = broker.publisher()
        let consumer = broker.consumer()
        let dead = broker.consumer(queue: broker.topology.deadQueue)
        defer {
            Task {
                await publisher.shutdown()
                await consumer.shutdown()
                await dead.shutdown()
            }
        }
        try await publisher.waitUntilConnected()
        try await publisher.publish(broker.turnMessage("keeps failing", id: "f1"))
        var attempts = 0
        var iterator = consumer.deliveries.makeAsyncIterator()
        let deadLettered = try await withThrowingTaskGroup(of: AMQPDelivery?.self) { group in
            group.addTask { try await next(of: dead.deliveries, within: .seconds(15)) }
            while attempts < 3, let delivery = await iterator.next() {
                attempts += 1
                try await consumer.reject(delivery, requeue: true)
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        #expect(attempts == 3)  // the first delivery and two redeliveries
        #expect(deadLettered?.messageID == "f1")
        #expect(deadLettered?.headers["x-first-death-reason"] == "delivery_limit")
    }

    @Test func aFullTurnQueueNacksThePublish() async throws {
        let broker = try BrokerFixture(maxLength: 2)
        let publisher = broker.publisher()
        defer { Task { await publisher.shutdown() } }
        try await publisher.waitUntilConnected()
        try await publisher.publish(broker.turnMessage("1"))
        try await publisher.publish(broker.turnMessage("2"))
        // A quorum queue applies its limit a little behind the publishes (the
        // length is known to the leader asynchronously): within a few more it nacks.
        var nack: AMQPError?
        for index in 3...20 where nack == nil {
            do {
                try await publisher.publish(broker.turnMessage("\(index)"))
            } catch {
                nack = error
            }
        }
        #expect(nack == .nacked(exchange: broker.topology.turnsExchange, routingKey: "turn"))
    }

    @Test func anUnroutableMandatoryPublishFails() async throws {
        let broker = try BrokerFixture()
        let publisher = broker.publisher()
        defer { Task { await publisher.shutdown() } }
        try await publisher.waitUntilConnected()
        let message = AMQPOutgoingMessage(
            exchange: broker.topology.repliesExchange,
            routingKey: "nobody",
            body: Array("x".utf8),
            messageID: "u1",
            mandatory: true
        )
        await #expect { try await publisher.publish(message) } throws: { error in
            if case .unroutable = error as? AMQPError { return true }
            return false
        }
    }

    @Test func publishingWithoutABrokerFailsAtOnceWithAClearError() async throws {
        var endpoint = try TestEnvironment.broker()
        endpoint.port = 1  // nothing listens there
        let publisher = AMQPPublisher(name: "nowhere", endpoint: endpoint, topology: AMQPTopology(), logger: TestEnvironment.logger)
        publisher.start()
        defer { Task { await publisher.shutdown() } }
        try await eventually("the connection attempt failed") { publisher.lastError.contains("TCP connect") }
        await #expect { try await publisher.publish(AMQPOutgoingMessage(exchange: "x", routingKey: "y", body: [])) } throws: { error in
            guard case .notConnected(let why) = error as? AMQPError else { return false }
            return why.contains("127.0.0.1:1")
        }
    }

    @Test func aConsumerReceivesOnlyTheRoutingKeysItBinds() async throws {
        let broker = try BrokerFixture()
        let queue = broker.topology.gatewayQueue(gatewayID: "g1")
        let publisher = broker.publisher()
        let replies = broker.consumer(queue: queue, topology: broker.topology.gateway(id: "g1"))
        defer {
            Task {
                await publisher.shutdown()
                await replies.shutdown()
            }
        }
        try await publisher.waitUntilConnected()
        try await replies.waitUntilConnected()
        try await replies.bind(exchange: broker.topology.repliesExchange, routingKey: "session-a")
        for key in ["session-b", "session-a"] {
            try await publisher.publish(
                AMQPOutgoingMessage(exchange: broker.topology.repliesExchange, routingKey: key, body: Array(key.utf8), messageID: key)
            )
        }
        let delivery = try #require(try await next(of: replies.deliveries))
        #expect(delivery.routingKey == "session-a")
        try await replies.ack(delivery)
        try await replies.unbind(exchange: broker.topology.repliesExchange, routingKey: "session-a")
        await #expect(throws: AMQPError.self) {
            try await publisher.publish(
                AMQPOutgoingMessage(exchange: broker.topology.repliesExchange, routingKey: "session-a", body: [], mandatory: true)
            )
        }
    }

    @Test func aDroppedConnectionIsReestablishedWithItsBindings() async throws {
        let broker = try BrokerFixture()
        let queue = broker.topology.gatewayQueue(gatewayID: "g2")
        let name = TestEnvironment.uniqueName("reconnect")
        let publisher = AMQPPublisher(name: name, endpoint: broker.endpoint, topology: broker.topology.shared, logger: TestEnvironment.logger)
        publisher.start()
        let replies = AMQPConsumer(
            name: name,
            endpoint: broker.endpoint,
            topology: broker.topology.gateway(id: "g2"),
            queue: queue,
            prefetch: 10,
            logger: TestEnvironment.logger
        )
        replies.start()
        defer {
            Task {
                await publisher.shutdown()
                await replies.shutdown()
            }
        }
        try await publisher.waitUntilConnected()
        try await replies.waitUntilConnected()
        try await replies.bind(exchange: broker.topology.repliesExchange, routingKey: "s1")

        try BrokerControl.closeConnections(named: name)
        try await eventually("both connections are back") {
            (try? await publisher.publish(
                AMQPOutgoingMessage(
                    exchange: broker.topology.repliesExchange,
                    routingKey: "s1",
                    body: Array("after".utf8),
                    messageID: "after",
                    mandatory: true
                )
            )) != nil
        }
        var iterator = replies.deliveries.makeAsyncIterator()
        let delivery = try #require(await iterator.next())
        #expect(delivery.messageID == "after")
    }
}

/// Drives the test broker through the project's scripts.
enum BrokerControl {
    /// Has the broker close the connections whose `connection_name` contains `name`
    /// (only this test's: other suites run at the same time).
    static func closeConnections(named name: String) throws {
        let scripts = try TestEnvironment.value("PARLEY_TEST_SCRIPTS")
        let node = try TestEnvironment.value("PARLEY_TEST_RABBITMQ_DIR")
        let script = """
            set -euo pipefail
            scripts=$0 node=$1 name=$2
            ctl() { bash "$scripts/lib/rabbitmq.sh" ctl "$node" "$@"; }
            pids=$(ctl list_connections -q pid client_properties | grep -F -- "$name" | cut -f1)
            [ -n "$pids" ] || { echo "no connection named $name" >&2; exit 1; }
            for pid in $pids; do ctl close_connection "$pid" "integration test"; done
            """
        let process = Process()
        let errors = Pipe()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script, scripts, node, name]
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        try #require(process.terminationStatus == 0, "closing the connections named \(name) failed: \(message)")
    }
}
