import Foundation
import Logging
import Synchronization
import ServiceLifecycleTestKit
import Testing

@testable import Gateway
@testable import Shared

/// Records binds; fails them on demand.
final class RecordingSubscriptions: ReplySubscriptions {
    let bound = Mutex<[UUID]>([])
    let unbound = Mutex<[UUID]>([])
    let calls = Mutex<[String]>([])
    let failure = Mutex<AMQPError?>(nil)

    func subscribe(session: UUID) async throws(AMQPError) {
        calls.withLock { $0.append("bind") }
        await Task.yield()
        if let error = failure.withLock({ $0 }) { throw error }
        bound.withLock { $0.append(session) }
    }

    func unsubscribe(session: UUID) async throws(AMQPError) {
        calls.withLock { $0.append("unbind:start") }
        await Task.yield()
        unbound.withLock { $0.append(session) }
        calls.withLock { $0.append("unbind:end") }
    }
}

/// The pipeline actor with its publishing service running, on a scripted broker:
/// what the machines decide, performed — binds, publishes, fan-out, release.
@Suite("Turn pipeline")
struct TurnPipelineTests {
    let subscriptions = RecordingSubscriptions()
    let session = UUID()
    let logger = Logger(label: "test")

    func socket() -> FrameOutbox {
        FrameOutbox(userID: "alice", capacity: 100, logger: logger)
    }

    func turn(_ content: String, from socket: FrameOutbox) -> PendingTurn {
        PendingTurn(
            envelope: TurnEnvelope(kind: .message, sessionID: session, userID: socket.userID, content: content, clientMessageID: content, gatewayID: "g"),
            origin: socket
        )
    }

    func done(_ turnID: UUID) -> ReplyEnvelope {
        .done(.init(
            sessionID: session, turnID: turnID, message: .init(id: 1, role: .assistant, content: "re", timestamp: Date()),
            status: "active", completed: false, usage: .init()
        ))
    }

    /// A pipeline whose publishing service runs for the length of `body`.
    func withPipeline(
        _ publisher: ScriptedTurnPublisher = ScriptedTurnPublisher(failing: []), subscriptions: (any ReplySubscriptions)? = nil,
        _ body: (TurnPipeline, ScriptedTurnPublisher) async throws -> Void
    ) async throws {
        let dispatcher = TurnDispatcher(publisher: publisher, ledger: InMemoryTurnLedger(), turnLifetime: .seconds(50), logger: logger)
        let pipeline = TurnPipeline(
            subscriptions: subscriptions ?? self.subscriptions, dispatcher: dispatcher, maxWaitingTurns: 2, replyTimeout: .seconds(30), logger: logger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pipeline.run() }
            defer { group.cancelAll() }
            try await body(pipeline, publisher)
        }
    }

    /// Frame types (and codes) a listener was sent, once `count` have arrived.
    func frames(of socket: FrameOutbox, count: Int) async -> [String] {
        var types: [String] = []
        for await frame in socket.frames {
            socket.didWrite()
            let json = (try? JSONSerialization.jsonObject(with: Data(frame.text.utf8)) as? [String: Any]) ?? [:]
            types.append([json["type"] as? String, json["code"] as? String].compactMap { $0 }.joined(separator: "/"))
            if types.count == count { break }
        }
        return types
    }

    func published(_ publisher: ScriptedTurnPublisher, count: Int) async throws -> [TurnEnvelope] {
        try await eventually { publisher.published.withLock { $0.count >= count ? $0 : nil } }
    }

    @Test func turnsArePublishedInOrderAndEverySocketGetsTheReplyOnce() async throws {
        try await withPipeline { pipeline, publisher in
            let (tab1, tab2) = (socket(), socket())
            try await pipeline.attach(tab1, to: session)
            try await pipeline.attach(tab2, to: session)
            #expect(subscriptions.bound.withLock { $0 } == [session])
            let (one, two) = (turn("one", from: tab1), turn("two", from: tab1))
            try await pipeline.submit(one)
            try await pipeline.submit(two)
            #expect(try await published(publisher, count: 1).map(\.content) == ["one"])
            #expect(await frames(of: tab1, count: 1) == ["accepted"])
            await pipeline.deliver(done(one.turnID))
            await pipeline.deliver(done(one.turnID))  // a redelivered duplicate
            #expect(try await published(publisher, count: 2).map(\.content) == ["one", "two"])
            #expect(await frames(of: tab1, count: 2) == ["reply", "accepted"])
            await pipeline.deliver(done(two.turnID))
            #expect(await frames(of: tab1, count: 1) == ["reply"])
            #expect(await frames(of: tab2, count: 2) == ["reply", "reply"])
            #expect(publisher.published.withLock { $0.count } == 2)
        }
    }

    /// Several sockets attach while the bind is in flight, and it fails: the session
    /// is forgotten, not left behind with no socket and no subscription.
    @Test func aFailedBindWithOthersWaitingLeavesNoEntryBehind() async throws {
        subscriptions.failure.withLock { $0 = .notConnected("down") }
        try await withPipeline { pipeline, _ in
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<5 {
                    group.addTask { [session, logger] in _ = try? await pipeline.attach(FrameOutbox(userID: "alice", capacity: 10, logger: logger), to: session) }
                }
            }
            #expect(await pipeline.listenerCount(session: session) == 0)
            #expect(await !pipeline.isTracking(session: session))
        }
    }

    @Test func aFailedBindIsReportedAndNotRemembered() async throws {
        subscriptions.failure.withLock { $0 = .notConnected("down") }
        try await withPipeline { pipeline, _ in
            let alice = socket()
            await #expect(throws: AMQPError.notConnected("down")) { try await pipeline.attach(alice, to: session) }
            #expect(await pipeline.listenerCount(session: session) == 0)
            subscriptions.failure.withLock { $0 = nil }
            try await pipeline.attach(alice, to: session)
            #expect(subscriptions.bound.withLock { $0 } == [session])
        }
    }

    @Test func theLastSocketLeavingUnbindsAndASocketNotAttachedCannotSend() async throws {
        try await withPipeline { pipeline, _ in
            let (tab1, tab2) = (socket(), socket())
            try await pipeline.attach(tab1, to: session)
            try await pipeline.attach(tab2, to: session)
            await pipeline.detach(tab1)
            #expect(subscriptions.unbound.withLock { $0 }.isEmpty)
            await pipeline.detach(tab2)
            #expect(subscriptions.unbound.withLock { $0 } == [session])
            #expect(await !pipeline.isTracking(session: session))
            await #expect { try await pipeline.submit(turn("late", from: tab2)) } throws: { error in
                (error as? FrameError)?.code == "session_not_open"
            }
        }
    }

    @Test func aReconnectingClientCannotOvertakeItsTurnInFlight() async throws {
        try await withPipeline { pipeline, publisher in
            let oldTab = socket()
            try await pipeline.attach(oldTab, to: session)
            let first = turn("one", from: oldTab)
            try await pipeline.submit(first)
            _ = try await published(publisher, count: 1)
            await pipeline.detach(oldTab)  // the page reloads while the reply is being written
            #expect(subscriptions.unbound.withLock { $0 }.isEmpty)
            let newTab = socket()
            try await pipeline.attach(newTab, to: session)
            try await pipeline.submit(turn("two", from: newTab))  // waits behind the first
            try await Task.sleep(for: .milliseconds(50))
            #expect(publisher.published.withLock { $0.count } == 1)
            await pipeline.deliver(done(first.turnID))
            #expect(try await published(publisher, count: 2).map(\.content) == ["one", "two"])
            #expect(await frames(of: newTab, count: 2) == ["reply", "accepted"])
        }
    }

    @Test func aSessionWithoutSocketsIsReleasedWhenItsTurnEnds() async throws {
        try await withPipeline { pipeline, publisher in
            let tab = socket()
            try await pipeline.attach(tab, to: session)
            let first = turn("one", from: tab)
            try await pipeline.submit(first)
            try await eventually { await pipeline.turnsInFlight().isEmpty ? nil : true }
            await pipeline.detach(tab)
            #expect(await pipeline.isTracking(session: session))
            await pipeline.deliver(done(first.turnID))
            #expect(!(await pipeline.isTracking(session: session)))
            #expect(subscriptions.unbound.withLock { $0 } == [session])
        }
    }

    @Test func aQuickReattachBindsOnlyAfterTheUnbind() async throws {
        try await withPipeline { pipeline, _ in
            let first = socket()
            try await pipeline.attach(first, to: session)
            let second = socket()
            async let leaving: Void = pipeline.detach(first)
            async let coming: Void = pipeline.attach(second, to: session)
            _ = try await (leaving, coming)
            let calls = subscriptions.calls.withLock { $0 }
            // Every unbind that started finished before the next bind.
            for (index, call) in calls.enumerated() where call == "unbind:start" {
                #expect(calls.count > index + 1 && calls[index + 1] == "unbind:end", "calls: \(calls)")
            }
            if calls.last == "unbind:end" {
                Issue.record("the session ended up unbound although a socket holds it: \(calls)")
            }
            #expect(await pipeline.listenerCount(session: session) == 1)
        }
    }

    @Test func aCancelDropsAWaitingTurnAndSignalsOneInFlight() async throws {
        try await withPipeline { pipeline, publisher in
            let alice = socket()
            try await pipeline.attach(alice, to: session)
            let (first, second) = (turn("one", from: alice), turn("two", from: alice))
            try await pipeline.submit(first)
            try await pipeline.submit(second)
            _ = try await published(publisher, count: 1)
            try await pipeline.cancel(second.turnID, in: nil, from: alice)
            try await pipeline.cancel(first.turnID, in: nil, from: alice)
            #expect(publisher.cancels.withLock { $0 } == [first.turnID])
            await #expect { try await pipeline.cancel(UUID(), in: nil, from: alice) } throws: { error in
                (error as? FrameError)?.code == "turn_not_found"
            }
            // A turn of another gateway in a session this socket holds: signalled.
            let foreign = UUID()
            try await pipeline.cancel(foreign, in: session, from: alice)
            #expect(publisher.cancels.withLock { $0 } == [first.turnID, foreign])
            #expect(await frames(of: alice, count: 2) == ["accepted", "error/cancelled"])
        }
    }

    /// After the gateway began shutting down, a turn the session frees is refused
    /// with a word, not left waiting for a publisher that no longer runs.
    @Test func turnsReleasedAfterShutdownAreRefusedNotLeftWaiting() async throws {
        let publisher = ScriptedTurnPublisher(failing: [])
        let dispatcher = TurnDispatcher(publisher: publisher, ledger: InMemoryTurnLedger(), turnLifetime: .seconds(50), logger: logger)
        let pipeline = TurnPipeline(subscriptions: subscriptions, dispatcher: dispatcher, maxWaitingTurns: 2, replyTimeout: .seconds(30), logger: logger)
        let alice = socket()
        let first = turn("one", from: alice)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await pipeline.run() }
                try await pipeline.attach(alice, to: session)
                try await pipeline.submit(first)
                try await pipeline.submit(turn("two", from: alice))
                _ = try await published(publisher, count: 1)
                trigger.triggerGracefulShutdown()
                try await group.next()  // the service ends once its publishes are done
                await pipeline.deliver(done(first.turnID))
            }
        }
        #expect(await frames(of: alice, count: 3) == ["accepted", "reply", "error/unavailable"])
        #expect(publisher.published.withLock { $0.count } == 1)
    }
}

/// Polls `probe` until it returns a value (5 s at most).
func eventually<T>(_ probe: () async -> T?) async throws -> T {
    let deadline = ContinuousClock.now.advanced(by: .seconds(5))
    while ContinuousClock.now < deadline {
        if let value = await probe() { return value }
        try await Task.sleep(for: .milliseconds(5))
    }
    Issue.record("condition not met within 5 s")
    throw CancellationError()
}
