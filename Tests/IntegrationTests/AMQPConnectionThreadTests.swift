import Foundation
import Logging
import ParleySupport
import Synchronization
import Testing

@testable import AMQPClient
@testable import Shared

/// The connection thread's promise: every command submitted ends, with a result or an
/// error, whatever happens to the connection.
@Suite("AMQP connection thread (real broker)", .serialized)
struct AMQPConnectionThreadTests {
    /// A role that does nothing: the commands under test are the only traffic.
    final class IdleRole: AMQPConnectionRole, @unchecked Sendable {
        func didConnect(_ wire: AMQPWire, generation: Int) throws(AMQPError) {}
        func handle(_ frame: AMQPIncomingFrame, wire: AMQPWire) throws(AMQPError) {}
        func didDisconnect(_ error: AMQPError) {}
        func checkDeadlines(now: ContinuousClock.Instant) {}
    }

    /// What became of each command, by name.
    final class Outcomes: Sendable {
        private let results = Mutex<[String: String]>([:])
        func record(_ name: String, _ outcome: String) { results.withLock { $0[name] = outcome } }
        func outcome(of name: String) -> String? { results.withLock { $0[name] } }
        var count: Int { results.withLock { $0.count } }
    }

    private func command(
        _ name: String,
        into outcomes: Outcomes,
        run body: @escaping @Sendable (AMQPWire) throws(AMQPError) -> Void = { _ in }
    )
        -> AMQPConnectionThread.Command
    {
        AMQPConnectionThread.Command(
            run: { wire throws(AMQPError) in
                try body(wire)
                outcomes.record(name, "ran")
            },
            fail: { outcomes.record(name, "failed: \($0)") }
        )
    }

    @Test func commandsQueuedBehindAFailingOneAreFailedNotForgotten() async throws {
        let broker = try BrokerFixture()
        let thread = AMQPConnectionThread(
            name: "test-commands",
            endpoints: [broker.endpoint],
            topology: broker.topology.shared,
            role: IdleRole(),
            logger: TestEnvironment.logger
        )
        thread.start()
        defer { thread.stop() }
        try await eventually("the connection is up") { thread.isConnected }

        // The first command holds the thread until the others are queued, so that they
        // are taken together, behind the one that fails (as when a write meets EPIPE).
        let release = DispatchSemaphore(value: 0)
        let outcomes = Outcomes()
        let holding = Atomic<Bool>(false)
        thread.submit(
            command("holder", into: outcomes) { _ in
                holding.store(true, ordering: .releasing)
                release.wait()
            }
        )
        try await eventually("the thread runs the holder") { holding.load(ordering: .acquiring) }
        thread.submit(command("broken", into: outcomes) { _ throws(AMQPError) in throw .connectionLost("simulated EPIPE") })
        for index in 0..<5 { thread.submit(command("behind-\(index)", into: outcomes)) }
        release.signal()

        try await eventually("every command ended") { outcomes.count == 7 }
        #expect(outcomes.outcome(of: "holder") == "ran")
        #expect(outcomes.outcome(of: "broken")?.hasPrefix("failed") == true)
        for index in 0..<5 {
            // Never run, so never sent: the caller may safely try again.
            let outcome = try #require(outcomes.outcome(of: "behind-\(index)"))
            #expect(outcome.hasPrefix("failed"), "behind-\(index): \(outcome)")
            #expect(outcome.contains("not connected"), "behind-\(index): \(outcome)")
        }
        // And the connection comes back for the next command.
        try await eventually("the connection is back") { thread.isConnected }
        let after = Outcomes()
        thread.submit(command("after", into: after))
        try await eventually("the next command runs") { after.outcome(of: "after") == "ran" }
    }

    @Test func aFailedBindDoesNotStrandTheAcksAndBindsBehindIt() async throws {
        // The same through the consumer's API: many binds and a bind to an exchange
        // that does not exist (the broker closes the channel) at once. Every call returns.
        let broker = try BrokerFixture()
        let consumer = broker.consumer()
        defer { Task { await consumer.shutdown() } }
        try await consumer.waitUntilConnected()
        let ended = Locked(0)
        // Unstructured on purpose: a call whose continuation is never resumed must fail
        // this test by the deadline below, not hang the suite.
        for round in 0..<20 {
            let exchange = round == 3 ? "no_such_exchange_\(UUID().uuidString)" : broker.topology.repliesExchange
            Task {
                try? await consumer.bind(exchange: exchange, routingKey: "k\(round)")
                ended.withLock { $0 += 1 }
            }
        }
        try await eventually(timeout: .seconds(30), "every bind call returned") { ended.value == 20 }
    }

    /// A node that does not answer is passed over: the connection goes to the next
    /// node of the cluster at once, not after the backoff.
    @Test func aConnectionFailsOverToTheNextNode() async throws {
        let broker = try BrokerFixture()
        var dead = broker.endpoint
        dead.port = 1
        let thread = AMQPConnectionThread(
            name: "test-failover",
            endpoints: [dead, dead, broker.endpoint],
            topology: broker.topology.shared,
            role: IdleRole(),
            logger: TestEnvironment.logger
        )
        let started = ContinuousClock.now
        thread.start()
        defer { thread.stop() }
        try await eventually("the connection is up on the live node") { thread.isConnected }
        #expect(ContinuousClock.now - started < .seconds(3))
    }
}
