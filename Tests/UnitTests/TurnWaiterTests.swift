import AMQPClient
import Foundation
import Logging
import ParleySupport
import ParleyTestSupport
import Testing

@testable import Gateway
@testable import Shared

@Suite("REST turn waiter")
struct TurnWaiterTests {
    let session = UUID()
    let logger = Logger(label: "test")

    struct Parts {
        let waiter: TurnWaiter
        let pipeline: TurnPipeline
        let publisher: ScriptedTurnPublisher
    }

    /// A waiter on a pipeline over a scripted broker, its turn tasks running.
    func withWaiter(
        _ publisher: ScriptedTurnPublisher = ScriptedTurnPublisher(failing: []),
        doubt: Duration = .seconds(5),
        subscriptions: any ReplySubscriptions = RecordingSubscriptions(),
        _ body: (Parts) async throws -> Void
    ) async throws {
        var dispatcher = TurnDispatcher(publisher: publisher, ledger: InMemoryTurnLedger(), turnLifetime: .seconds(50), logger: logger)
        dispatcher.doubtResolutionTime = doubt
        let pipeline = TurnPipeline(
            subscriptions: subscriptions,
            dispatcher: dispatcher,
            maxWaitingTurns: 4,
            replyTimeout: .seconds(60),
            logger: logger
        )
        let tasks = RESTTurnTasks()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await tasks.run() }
            group.addTask { await pipeline.run() }
            defer { group.cancelAll() }
            try await body(
                Parts(waiter: TurnWaiter(pipeline: pipeline, tasks: tasks, gatewayID: "g", logger: logger), pipeline: pipeline, publisher: publisher)
            )
        }
    }

    func done(_ turnID: UUID, _ text: String = "olá") -> ReplyEnvelope {
        .done(
            .init(
                sessionID: session,
                turnID: turnID,
                message: ChatMessage(id: 1, role: .assistant, content: text, timestamp: Date()),
                status: "active",
                completed: false,
                usage: TokenUsage()
            )
        )
    }

    /// The turn the broker received, once it has.
    func published(_ publisher: ScriptedTurnPublisher, count: Int = 1) async throws -> TurnEnvelope {
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        while ContinuousClock.now < deadline {
            if let turn = publisher.published.withLock({ $0.count >= count ? $0[count - 1] : nil }) { return turn }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw CancellationError()
    }

    func code(_ body: () async throws(ClientError) -> ReplyEnvelope.Done) async -> ClientError? {
        do {
            _ = try await body()
            return nil
        } catch {
            return error
        }
    }

    @Test func theReplyOfTheTurnIsTheAnswerAndTheListenerLeaves() async throws {
        try await withWaiter { parts in
            async let answer = parts.waiter.send(.message, content: "oi", to: session, userID: "alice", wait: .seconds(5))
            let turn = try await published(parts.publisher)
            await parts.pipeline.deliver(done(turn.turnID))
            let reply = try await answer
            #expect(reply.turnID == turn.turnID && reply.message.content == "olá")
            try await waitUntil { await !parts.pipeline.isTracking(session: session) }
        }
    }

    @Test func aWaitEndingAfterTheBrokerTookTheTurnIsATimeoutAndTheTurnGoesOn() async throws {
        try await withWaiter { parts in
            let error = await code { () async throws(ClientError) in
                try await parts.waiter.send(.message, content: "oi", to: session, userID: "alice", wait: .milliseconds(200))
            }
            let turn = try await published(parts.publisher)
            #expect(error?.code == .replyTimeout && error?.turnID == turn.turnID && error?.sessionID == session)
            // Still followed: the session stays bound until the reply arrives.
            #expect(await parts.pipeline.isTracking(session: session))
            await parts.pipeline.deliver(done(turn.turnID))
            try await waitUntil { await !parts.pipeline.isTracking(session: session) }
        }
    }

    @Test func aTurnStillWaitingBehindAnotherWhenTheWaitEndsIsWithdrawnUnsent() async throws {
        try await withWaiter { parts in
            let socket = FrameOutbox(userID: "alice", capacity: 50, logger: logger)
            try await parts.pipeline.attach(socket, to: session)
            let first = PendingTurn(
                envelope: TurnEnvelope(kind: .message, sessionID: session, userID: "alice", content: "1", gatewayID: "g"),
                origin: socket
            )
            try await parts.pipeline.submit(first)
            let error = await code { () async throws(ClientError) in
                try await parts.waiter.send(.message, content: "2", to: session, userID: "alice", wait: .milliseconds(200))
            }
            #expect(error?.code == .sessionBusy && error?.turnID == nil)
            // The first turn's reply frees the session, and no turn is next in line.
            _ = try await published(parts.publisher)
            await parts.pipeline.deliver(done(first.envelope.turnID))
            try await Task.sleep(for: .milliseconds(50))
            #expect(parts.publisher.published.withLock { $0.map(\.content) } == ["1"])
        }
    }

    @Test func anUnconfirmedPublishIsWaitedThrough() async throws {
        let publisher = ScriptedTurnPublisher(failing: Array(repeating: AMQPError.connectionLost("gone"), count: 1000))
        try await withWaiter(publisher, doubt: .milliseconds(100)) { parts in
            async let answer = parts.waiter.send(.message, content: "oi", to: session, userID: "alice", wait: .seconds(5))
            let turn = try await published(parts.publisher)
            // Once the dispatcher gives up re-publishing, the pipeline counts the turn as in
            // flight (it may be in the queue) and the listener has heard `unconfirmed`.
            try await waitUntil { await parts.pipeline.turnsInFlight().contains { $0.turnID == turn.turnID } }
            await parts.pipeline.deliver(done(turn.turnID, "apesar de tudo"))
            #expect(try await answer.message.content == "apesar de tudo")
        }
    }

    /// A 504 promises the turn will be answered: never while the broker may still
    /// refuse it. The wait ends while the publish is in progress; the broker then nacks.
    @Test func aWaitEndingWhileThePublishIsUndecidedWaitsForTheBrokersAnswer() async throws {
        let publisher = ScriptedTurnPublisher(failing: [.nacked(exchange: "t", routingKey: "turn")])
        publisher.hold.withLock { $0 = Gate() }
        try await withWaiter(publisher) { parts in
            async let answer = code { () async throws(ClientError) in
                try await parts.waiter.send(.message, content: "oi", to: session, userID: "alice", wait: .milliseconds(100))
            }
            _ = try await published(parts.publisher)
            try await Task.sleep(for: .milliseconds(300))  // the wait is over; the broker has not answered yet
            publisher.hold.withLock { $0 }?.open()
            let error = await answer
            #expect(error?.code == .overloaded, "\(String(describing: error))")
        }
    }

    /// The same while the session's replies are still being bound to this gateway,
    /// and the bind fails: nothing was sent.
    @Test func aWaitEndingWhileTheBindIsUndecidedWaitsForIt() async throws {
        let subscriptions = HeldSubscriptions()
        try await withWaiter(subscriptions: subscriptions) { parts in
            async let answer = code { () async throws(ClientError) in
                try await parts.waiter.send(.message, content: "oi", to: session, userID: "alice", wait: .milliseconds(100))
            }
            try await Task.sleep(for: .milliseconds(300))
            subscriptions.release.open()
            let error = await answer
            #expect(error?.code == .unavailable, "\(String(describing: error))")
            #expect(parts.publisher.published.withLock { $0.isEmpty })
        }
    }

    func waitUntil(_ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("condition not met within 5 s")
    }
}

/// Binds only when released, and then fails.
final class HeldSubscriptions: ReplySubscriptions {
    let release = Gate()

    func subscribe(session: UUID) async throws(AMQPError) {
        await release.wait()
        throw .notConnected("the broker went away")
    }

    func unsubscribe(session: UUID) async throws(AMQPError) {}
}
