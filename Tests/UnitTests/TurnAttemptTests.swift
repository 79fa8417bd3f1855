import Foundation
import Logging
import ParleySupport
import ParleyTestSupport
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import Shared
@testable import Worker

/// A model whose first generation streams a word and then waits until released (or
/// cancelled); later generations answer at once.
final class HeldModel: ChatModel {
    let release = Gate()
    private let calls = Mutex(0)

    var provider: String { "held" }
    var model: String { "held-1" }
    var callCount: Int { calls.withLock { $0 } }

    func complete(_ prompt: [PromptMessage]) async throws(LLMError) -> ChatCompletion {
        try await stream(prompt) { _ in }
    }

    func stream(_ prompt: [PromptMessage], onText: @escaping @Sendable (String) async -> Void) async throws(LLMError) -> ChatCompletion {
        let call = calls.withLock { calls in
            calls += 1
            return calls
        }
        let text = "answer \(call) to \(prompt.last?.content ?? "") after \(prompt.count - 2) earlier messages"
        if call == 1 {
            await onText("answer ")
            await release.wait()
            if Task.isCancelled { throw .cancelled }
        }
        await onText(text)
        return ChatCompletion(text: text, model: model, usage: .init())
    }
}

/// What one attempt of the turn handler does about other attempts and other turns:
/// order across gateways (defect 3), one live attempt per turn (4, 5), and a stop
/// that gives the turn back (8).
@Suite("Turn attempts")
struct TurnAttemptTests {
    let ledger = InMemoryTurnLedger()
    let store: InMemoryConversationStore
    let logger = Logger(label: "test")

    init() {
        store = InMemoryConversationStore(ledger: ledger)
    }

    func handler(_ model: any ChatModel) -> TurnHandler {
        TurnHandler(
            store: store,
            holding: TurnHolding(ledger: ledger, holdFor: .seconds(10), renewEvery: .milliseconds(200), longestWaitPause: .milliseconds(20)),
            generator: .single(model),
            prompts: PromptBuilder(systemPrompt: "sys", maxHistory: 20),
            cancellations: TurnCancellations()
        )
    }

    func session() async throws -> UUID {
        let id = UUID()
        try await store.createSession(SessionRecord(id: id, userID: "alice"))
        return id
    }

    func message(_ content: String, in session: UUID) -> TurnEnvelope {
        TurnEnvelope(kind: .message, sessionID: session, userID: "alice", content: content, gatewayID: "g", deadline: Date().addingTimeInterval(60))
    }

    @Test func aTurnSentThroughAnotherGatewayWaitsForTheEarlierOneAndSeesItsAnswer() async throws {
        let model = HeldModel()
        let sessionID = try await session()
        let (first, second) = (message("T1", in: sessionID), message("T2", in: sessionID))
        try await ledger.register(first)  // gateway A
        try await ledger.register(second)  // gateway B, while T1 is generated
        let handler = handler(model)
        try await withThrowingTaskGroup(of: ReplyEnvelope.self) { group in
            group.addTask { try await handler.reply(to: first, logger: logger) }
            try await eventually("T1 is being generated") { model.callCount == 1 }
            group.addTask { try await handler.reply(to: second, logger: logger) }
            // T2 must not start while T1 is generated.
            try await Task.sleep(for: .milliseconds(300))
            #expect(model.callCount == 1, "T2 was generated next to T1")
            model.release.open()
            var replies: [ReplyEnvelope] = []
            for try await reply in group { replies.append(reply) }
            let texts = replies.compactMap { reply -> String? in
                if case .done(let done) = reply { return done.message.content }
                return nil
            }
            #expect(Set(texts) == ["answer 1 to T1 after 0 earlier messages", "answer 2 to T2 after 2 earlier messages"])
        }
    }

    @Test func aRedeliveryTakesTheTurnOverTheOldAttemptStopsAndTheClientHearsAReset() async throws {
        let model = HeldModel()
        let sessionID = try await session()
        let turn = message("oi", in: sessionID)
        let handler = handler(model)
        let progress = Locked<[GenerationProgress]>([])
        let old = TurnAttempt()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await #expect(throws: TurnFailure.superseded) { try await handler.reply(to: turn, attempt: old, logger: logger) }
            }
            try? await eventually("the first attempt generates") { model.callCount == 1 }
            // The old attempt's connection dropped: the broker redelivered the turn.
            let reply = try? await handler.reply(to: turn, attempt: TurnAttempt(takeover: true), logger: logger) { step in
                progress.withLock { $0.append(step) }
            }
            guard case .done(let done) = reply else {
                Issue.record("the redelivery was not answered: \(String(describing: reply))")
                return
            }
            #expect(done.message.content == "answer 2 to oi after 0 earlier messages")
            // A forced reset: this attempt has sent nothing, but the old one had.
            #expect(progress.value.first.map { if case .voidEarlierAttempt = $0 { true } else { false } } == true, "\(progress.value)")
            // The old attempt finds out by renewing its hold, long before its deadline.
            let waited = ContinuousClock.now
            await group.waitForAll()
            #expect(waited.duration(to: .now) < .seconds(5), "the superseded attempt kept generating")
        }
        model.release.open()
        #expect(try await store.recentMessages(session: sessionID, limit: 10).count == 2)
    }

    @Test func anAttemptWhoseDeliveryIsStaleStopsAtOnce() async throws {
        let model = HeldModel()
        let sessionID = try await session()
        let current = Locked(true)
        let attempt = TurnAttempt(isCurrent: { current.value })
        let handler = handler(model)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await #expect(throws: TurnFailure.superseded) {
                    try await handler.reply(to: message("oi", in: sessionID), attempt: attempt, logger: logger)
                }
            }
            try await eventually("the attempt generates") { model.callCount == 1 }
            current.withLock { $0 = false }  // the consumer reconnected
            try await group.waitForAll()
        }
        #expect(try await store.recentMessages(session: sessionID, limit: 10).isEmpty)
    }

    @Test func aCopyOfATurnBeingGeneratedWaitsAndRepliesWithTheStoredAnswer() async throws {
        let model = HeldModel()
        let sessionID = try await session()
        let turn = message("publicada duas vezes", in: sessionID)
        let handler = handler(model)
        try await withThrowingTaskGroup(of: ReplyEnvelope.self) { group in
            group.addTask { try await handler.reply(to: turn, logger: logger) }
            try await eventually("the original generates") { model.callCount == 1 }
            group.addTask { try await handler.reply(to: turn, logger: logger) }  // the copy
            try await Task.sleep(for: .milliseconds(200))
            model.release.open()
            var contents: [String] = []
            for try await reply in group {
                if case .done(let done) = reply { contents.append(done.message.content) }
            }
            #expect(contents.count == 2 && Set(contents).count == 1, "\(contents)")
        }
        #expect(model.callCount == 1, "the copy was generated too")
    }

    /// T2 waited for T1 (through another gateway), and T1's answer completed the
    /// topic: T2 is not generated into a completed session.
    @Test func aTurnThatWaitedIsRefusedWhenTheTurnBeforeItCompletedTheSession() async throws {
        let sessionID = try await session()
        let (first, second) = (message("T1", in: sessionID), message("T2", in: sessionID))
        try await ledger.register(first)
        try await ledger.register(second)
        let holder = LedgerAttempt()
        #expect(try await ledger.claim(first, attempt: holder, holdFor: .seconds(10)) == .granted(attemptNumber: 1))
        let model = ScriptedModel()
        async let waiting = handler(model).reply(to: second, logger: logger)
        try await Task.sleep(for: .milliseconds(100))
        var record = CompletedTurn(
            sessionID: sessionID,
            turnID: first.turnID,
            userContent: "T1",
            replyContent: "parabéns",
            rawReply: "parabéns {TOPIC_COMPLETED}",
            model: "m",
            usage: TokenUsage(),
            latencyMilliseconds: 1
        )
        record.completesSession = true
        record.attempt = holder.id
        _ = try await store.record(record)
        guard case .error(let failure) = try await waiting else {
            Issue.record("T2 was answered in a completed session")
            return
        }
        #expect(failure.code == .sessionCompleted)
        #expect(model.callCount == 0)
    }

    /// An error reply is settled in the ledger before it is published; when that publish
    /// fails (or the worker dies), the next attempt sends the same error instead of
    /// dropping the turn as "already settled".
    @Test func theNextAttemptAfterAnErrorReplySendsTheSameError() async throws {
        let sessionID = try await session()
        let turn = message("oi", in: sessionID)
        let failing = handler(ScriptedModel(failure: .unavailable("503")))
        guard case .error(let first) = try await failing.reply(to: turn, logger: logger) else {
            Issue.record("expected an error reply")
            return
        }
        guard case .error(let again) = try await handler(ScriptedModel()).reply(to: turn, attempt: TurnAttempt(takeover: true), logger: logger) else {
            Issue.record("the redelivery did not resend the error")
            return
        }
        #expect(again == first)
    }

    /// A turn waiting for the session's earlier one goes back to the queue when the
    /// worker stops, instead of holding the stop until the shutdown timeout.
    @Test func aWaitingTurnIsGivenBackWhenTheWorkerStops() async throws {
        let sessionID = try await session()
        let (first, second) = (message("T1", in: sessionID), message("T2", in: sessionID))
        try await ledger.register(first)
        try await ledger.register(second)
        #expect(try await ledger.claim(first, attempt: LedgerAttempt(), holdFor: .seconds(10)) == .granted(attemptNumber: 1))
        let handler = handler(ScriptedModel())
        await testGracefulShutdown { trigger in
            async let waiting: Void = {
                await #expect(throws: TurnFailure.interrupted) { try await handler.reply(to: second, logger: logger) }
            }()
            try? await Task.sleep(for: .milliseconds(100))
            trigger.triggerGracefulShutdown()
            await waiting
        }
    }

    @Test func aWorkerStoppingMidTurnGivesItBackInsteadOfAnsweringCancelled() async throws {
        let model = HeldModel()
        let sessionID = try await session()
        let turn = message("oi", in: sessionID)
        let handler = handler(model)
        let running = Task { try await handler.reply(to: turn, logger: logger) }
        try await eventually("the turn is generated") { model.callCount == 1 }
        running.cancel()  // the shutdown timeout cancels the turn processor's tasks
        let result = await running.result
        switch result {
        case .failure(let failure as TurnFailure):
            guard case .interrupted = failure else {
                Issue.record("expected interrupted, got \(failure)")
                return
            }
        case .failure(let error):
            Issue.record("unexpected \(error)")
        case .success(let reply):
            Issue.record("a stopping worker answered the turn: \(reply)")
        }
    }
}

extension TurnFailure: Equatable {
    public static func == (lhs: TurnFailure, rhs: TurnFailure) -> Bool {
        switch (lhs, rhs) {
        case (.superseded, .superseded), (.interrupted, .interrupted): true
        case (.store(let a), .store(let b)): a == b
        case (.alreadySettled(let a), .alreadySettled(let b)): a == b
        default: false
        }
    }
}

/// Polls `condition` until it holds (unit tests never sleep for a fixed time to wait).
func eventually(timeout: Duration = .seconds(10), _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("timed out waiting until \(what)")
    throw CancellationError()
}
