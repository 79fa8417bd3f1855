import AMQPClient
import Foundation
import Logging
import ParleySupport
import ParleyTestSupport
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import Gateway
@testable import Shared

/// Records binds; fails them on demand.
final class RecordingSubscriptions: ReplySubscriptions {
    let bound = Mutex<[UUID]>([])
    let unbound = Mutex<[UUID]>([])
    let calls = Mutex<[String]>([])
    let failure = Mutex<AMQPError?>(nil)
    /// When set, binds (or unbinds) wait for it to open: forces an interleaving.
    let holdBinds = Mutex<Gate?>(nil)
    let holdUnbinds = Mutex<Gate?>(nil)

    func subscribe(session: UUID) async throws(AMQPError) {
        calls.withLock { $0.append("bind") }
        await Task.yield()
        if let gate = holdBinds.withLock({ $0 }) { await gate.wait() }
        if let error = failure.withLock({ $0 }) { throw error }
        bound.withLock { $0.append(session) }
    }

    func unsubscribe(session: UUID) async throws(AMQPError) {
        calls.withLock { $0.append("unbind:start") }
        await Task.yield()
        if let gate = holdUnbinds.withLock({ $0 }) { await gate.wait() }
        unbound.withLock { $0.append(session) }
        calls.withLock { $0.append("unbind:end") }
    }
}

/// The pipeline actor with its publishing service running, on a scripted broker:
/// what the machines decide, performed — binds, publishes, fan-out, release.
@Suite("Turn pipeline", .timeLimit(.minutes(1)))
struct TurnPipelineTests {
    let subscriptions = RecordingSubscriptions()
    let session = UUID()
    let logger = Logger(label: "test")

    func socket() -> FrameOutbox {
        FrameOutbox(userID: "alice", capacity: 100, logger: logger)
    }

    func turn(_ content: String, from socket: FrameOutbox) -> PendingTurn {
        PendingTurn(
            envelope: TurnEnvelope(
                kind: .message,
                sessionID: session,
                userID: socket.userID,
                content: content,
                clientMessageID: content,
                gatewayID: "g"
            ),
            origin: socket
        )
    }

    func done(_ turnID: UUID) -> ReplyEnvelope {
        .done(
            .init(
                sessionID: session,
                turnID: turnID,
                message: .init(id: 1, role: .assistant, content: "re", timestamp: Date()),
                status: "active",
                completed: false,
                usage: .init()
            )
        )
    }

    /// A pipeline whose publishing service runs for the length of `body`.
    func withPipeline(
        _ publisher: ScriptedTurnPublisher = ScriptedTurnPublisher(failing: []),
        subscriptions: (any ReplySubscriptions)? = nil,
        _ body: (TurnPipeline, ScriptedTurnPublisher) async throws -> Void
    ) async throws {
        let dispatcher = TurnDispatcher(publisher: publisher, ledger: InMemoryTurnLedger(), turnLifetime: .seconds(50), logger: logger)
        let pipeline = TurnPipeline(
            subscriptions: subscriptions ?? self.subscriptions,
            dispatcher: dispatcher,
            maxWaitingTurns: 2,
            replyTimeout: .seconds(30),
            logger: logger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pipeline.run() }
            defer { group.cancelAll() }
            try await body(pipeline, publisher)
        }
    }

    /// The next `count` frame types (and codes) a listener was sent; fewer when they
    /// do not come within 5 s.
    func frames(of socket: FrameOutbox, count: Int) async -> [String] {
        let read = Locked<[String]>([])
        _ = try? await withTimeout(.seconds(5)) {
            for await frame in socket.frames {
                socket.didWrite()
                read.withLock { $0.append(Self.name(frame)) }
                if read.value.count == count { return }
            }
        }
        return read.value
    }

    /// Every frame a listener was sent that was not read yet, the pipeline being at
    /// rest: ends the listener's queue.
    func remainingFrames(of socket: FrameOutbox) async -> [String] {
        socket.finish()
        var names: [String] = []
        for await frame in socket.frames { names.append(Self.name(frame)) }
        return names
    }

    static func name(_ frame: ServerFrame) -> String {
        let json = (try? JSONSerialization.jsonObject(with: Data(frame.text.utf8)) as? [String: Any]) ?? [:]
        return [json["type"] as? String, json["code"] as? String].compactMap { $0 }.joined(separator: "/")
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
            #expect(await remainingFrames(of: tab1) == ["reply"])
            #expect(await remainingFrames(of: tab2) == ["reply", "reply"])  // one, two: the duplicate not again
            #expect(publisher.published.withLock { $0.count } == 2)
        }
    }

    /// Several sockets attach while the bind is in flight, and it fails: the session
    /// is forgotten, not left behind with no socket and no subscription.
    @Test func aFailedBindWithOthersWaitingLeavesNoEntryBehind() async throws {
        subscriptions.failure.withLock { $0 = .notConnected("down") }
        let bind = Gate()
        subscriptions.holdBinds.withLock { $0 = bind }
        try await withPipeline { pipeline, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<5 {
                    group.addTask { [session, logger] in
                        _ = try? await pipeline.attach(FrameOutbox(userID: "alice", capacity: 10, logger: logger), to: session)
                    }
                }
                // All five are in: one binds, four wait for its bind.
                _ = try await eventually { await pipeline.listenerCount(session: session) == 5 ? true : nil }
                bind.open()
                try await group.waitForAll()
            }
            #expect(subscriptions.calls.withLock { $0 } == ["bind"])
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
                (error as? ClientError)?.code == .sessionNotOpen
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
            let unbind = Gate()
            subscriptions.holdUnbinds.withLock { $0 = unbind }
            let second = socket()
            async let leaving: Void = pipeline.detach(first)
            _ = try await eventually { subscriptions.calls.withLock { $0.last == "unbind:start" ? true : nil } }
            async let coming: Void = pipeline.attach(second, to: session)
            _ = try await eventually { await pipeline.listenerCount(session: session) == 1 ? true : nil }
            #expect(subscriptions.calls.withLock { $0 } == ["bind", "unbind:start"])  // the attach waits
            unbind.open()
            _ = try await (leaving, coming)
            #expect(subscriptions.calls.withLock { $0 } == ["bind", "unbind:start", "unbind:end", "bind"])
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
            #expect(await frames(of: alice, count: 1) == ["accepted"])
            try await pipeline.cancel(second.turnID, in: nil, from: alice)
            try await pipeline.cancel(first.turnID, in: nil, from: alice)
            #expect(publisher.cancels.withLock { $0 } == [first.turnID])
            await #expect { try await pipeline.cancel(UUID(), in: nil, from: alice) } throws: { error in
                (error as? ClientError)?.code == .turnNotFound
            }
            // A turn of another gateway in a session this socket holds: signalled.
            let foreign = UUID()
            try await pipeline.cancel(foreign, in: session, from: alice)
            #expect(publisher.cancels.withLock { $0 } == [first.turnID, foreign])
            #expect(await remainingFrames(of: alice) == ["error/cancelled"])
        }
    }

    @Test func anOverdueTurnEndsAndTheSessionsNextIsPublished() async throws {
        try await withPipeline { pipeline, publisher in
            let alice = socket()
            try await pipeline.attach(alice, to: session)
            try await pipeline.submit(turn("slow", from: alice))
            try await pipeline.submit(turn("next", from: alice))
            #expect(await frames(of: alice, count: 1) == ["accepted"])
            await pipeline.expireOverdueTurns(now: .now)
            await pipeline.expireOverdueTurns(now: .now.advanced(by: .seconds(31)))
            #expect(try await published(publisher, count: 2).map(\.content) == ["slow", "next"])
            #expect(await frames(of: alice, count: 2) == ["error/reply_timeout", "accepted"])
        }
    }

    /// The broker is slow to confirm and the reply comes first: the client still
    /// hears `accepted` before the reply.
    @Test func aReplyDuringItsPublishWaitsForTheConfirm() async throws {
        let publisher = ScriptedTurnPublisher(failing: [])
        let confirm = Gate()
        publisher.hold.withLock { $0 = confirm }
        try await withPipeline(publisher) { pipeline, _ in
            let alice = socket()
            try await pipeline.attach(alice, to: session)
            let fast = turn("fast", from: alice)
            try await pipeline.submit(fast)
            _ = try await published(publisher, count: 1)
            await pipeline.deliver(done(fast.turnID))
            #expect(await pipeline.turnsInFlight().isEmpty)  // not confirmed yet
            confirm.open()
            #expect(await frames(of: alice, count: 2) == ["accepted", "reply"])
            _ = try await eventually { await pipeline.turnsInFlight().isEmpty ? true : nil }
            #expect(await remainingFrames(of: alice).isEmpty)
        }
    }

    @Test func aRefusedTurnFreesTheSessionForItsNext() async throws {
        try await withPipeline(ScriptedTurnPublisher(failing: [.nacked(exchange: "t", routingKey: "turn")])) { pipeline, publisher in
            let alice = socket()
            try await pipeline.attach(alice, to: session)
            try await pipeline.submit(turn("a", from: alice))
            try await pipeline.submit(turn("b", from: alice))
            #expect(await frames(of: alice, count: 2) == ["error/overloaded", "accepted"])
            #expect(try await published(publisher, count: 2).map(\.content) == ["a", "b"])
        }
    }

    @Test func aSessionFoundCompletedEndsItsWaitingTurnsAndTakesNoMore() async throws {
        try await withPipeline { pipeline, _ in
            let alice = socket()
            try await pipeline.attach(alice, to: session)
            try await pipeline.submit(turn("a", from: alice))
            try await pipeline.submit(turn("b", from: alice))
            #expect(await frames(of: alice, count: 1) == ["accepted"])
            await pipeline.noteCompleted(session)
            #expect(await frames(of: alice, count: 1) == ["error/session_completed"])
            await #expect { try await pipeline.submit(turn("c", from: alice)) } throws: { error in
                (error as? ClientError)?.code == .sessionCompleted
            }
        }
    }

    /// After the gateway began shutting down, a turn the session frees is refused
    /// with a word, not handed to a publisher that no longer runs. (In the gateway the
    /// reply router stops first; a refused publish during the drain frees the turn.)
    @Test func turnsReleasedAfterShutdownAreRefusedNotLeftWaiting() async throws {
        let publisher = ScriptedTurnPublisher(failing: [])
        let dispatcher = TurnDispatcher(publisher: publisher, ledger: InMemoryTurnLedger(), turnLifetime: .seconds(50), logger: logger)
        let pipeline = TurnPipeline(
            subscriptions: subscriptions,
            dispatcher: dispatcher,
            maxWaitingTurns: 2,
            replyTimeout: .seconds(30),
            logger: logger
        )
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
        #expect(await remainingFrames(of: alice) == ["accepted", "reply", "error/unavailable"])
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
