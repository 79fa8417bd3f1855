import AMQPClient
import Foundation
import ParleySupport
import PostgresNIO
import Synchronization
import Testing

@testable import Shared
@testable import Worker

/// Answers every prompt with a fixed text and counts the calls.
final class CountingModel: ChatModel {
    let calls = Atomic<Int>(0)

    var provider: String { "counting" }
    var model: String { "counting-1" }

    func complete(_ prompt: [PromptMessage]) async throws(LLMError) -> ChatCompletion {
        calls.add(1, ordering: .relaxed)
        return ChatCompletion(text: "re: \(prompt.last?.content ?? "")", model: "counting", usage: TokenUsage(promptTokens: 1, completionTokens: 1))
    }

    func stream(_ prompt: [PromptMessage], onText: @escaping @Sendable (String) async -> Void) async throws(LLMError) -> ChatCompletion {
        let completion = try await complete(prompt)
        await onText(completion.text)
        return completion
    }
}

@Suite("Worker pipeline (real broker and database)", .serialized)
struct WorkerPipelineTests {
    /// Runs a turn processor on the real broker and an isolated schema, with a
    /// listener bound to the replies of `session`.
    func withPipeline(
        storeSeenByWorker: @escaping @Sendable (PostgresConversationStore) -> any ConversationStore = { $0 },
        _ body:
            @Sendable (
                _ broker: BrokerFixture, _ publisher: AMQPPublisher, _ replies: AMQPConsumer, _ store: PostgresConversationStore,
                _ model: CountingModel, _ session: UUID
            ) async throws -> Void
    ) async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger)
            let session = UUID()
            try await store.createSession(SessionRecord(id: session, userID: "alice"))
            let seen = storeSeenByWorker(store)
            let broker = try BrokerFixture()
            let publisher = broker.publisher()
            let turns = broker.consumer()
            let replies = broker.consumer(queue: broker.topology.gatewayQueue(gatewayID: "it"), topology: broker.topology.gateway(id: "it"))
            let model = CountingModel()
            let processor = TurnProcessor(
                consumer: turns,
                publisher: publisher,
                handler: TurnHandler(
                    store: seen,
                    holding: TurnHolding(ledger: PostgresTurnLedger(client: client, logger: TestEnvironment.logger)),
                    generator: ProviderChain(
                        slots: [.init(model: model, breaker: CircuitBreaker())],
                        policy: RetryPolicy(maxAttempts: 1),
                        streaming: true,
                        logger: TestEnvironment.logger
                    ),
                    prompts: PromptBuilder(systemPrompt: "sys", maxHistory: 10),
                    cancellations: TurnCancellations(),
                    // The worker's own, unless a test stands between the worker and its store.
                    opener: seen is PostgresConversationStore ? PostgresTurnOpener(client: client, logger: TestEnvironment.logger) : nil
                ),
                topology: broker.topology,
                retryPause: .milliseconds(50),
                logger: TestEnvironment.logger
            )
            try await replies.waitUntilConnected()
            try await replies.bind(exchange: broker.topology.repliesExchange, routingKey: session.lowercased)
            try await publisher.waitUntilConnected()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await processor.run() }
                defer { group.cancelAll() }
                try await body(broker, publisher, replies, store, model, session)
            }
            await publisher.shutdown()
            await turns.shutdown()
            await replies.shutdown()
        }
    }

    func publish(_ turn: TurnEnvelope, with publisher: AMQPPublisher, broker: BrokerFixture) async throws {
        try await publisher.publish(
            AMQPOutgoingMessage(
                exchange: broker.topology.turnsExchange,
                routingKey: broker.topology.turnRoutingKey,
                body: EnvelopeCoding.encode(turn),
                messageID: turn.turnID.lowercased,
                type: turn.messageType,
                mandatory: true
            )
        )
    }

    /// The next final reply (`done` or `error`), with the deltas that came before it.
    func nextReply(_ replies: AMQPConsumer) async throws -> ReplyEnvelope {
        try await nextReplyWithDeltas(replies).reply
    }

    func nextReplyWithDeltas(_ replies: AMQPConsumer) async throws -> (reply: ReplyEnvelope, deltas: [ReplyEnvelope.Delta]) {
        var deltas: [ReplyEnvelope.Delta] = []
        while true {
            let delivery = try #require(try await next(of: replies.deliveries))
            try await replies.ack(delivery)
            let envelope = try EnvelopeCoding.decode(ReplyEnvelope.self, from: delivery.body)
            switch envelope {
            case .delta(let delta): deltas.append(delta)
            case .reset: deltas = []
            case .done, .error: return (envelope, deltas)
            }
        }
    }

    @Test func aTurnIsAnsweredStoredAndAcked() async throws {
        try await withPipeline { broker, publisher, replies, store, model, session in
            let turn = TurnEnvelope(kind: .message, sessionID: session, userID: "alice", content: "oi", gatewayID: "it")
            try await publish(turn, with: publisher, broker: broker)
            let (reply, deltas) = try await nextReplyWithDeltas(replies)
            guard case .done(let done) = reply else {
                Issue.record("expected a done envelope")
                return
            }
            #expect(done.turnID == turn.turnID)
            #expect(done.message.content == "re: oi")
            #expect(deltas.map(\.text).joined() == "re: oi")
            #expect(deltas.allSatisfy { $0.turnID == turn.turnID })
            #expect(model.calls.load(ordering: .relaxed) == 1)
            #expect(try await store.messages(session: session, afterID: 0, limit: 10).map(\.content) == ["oi", "re: oi"])
        }
    }

    @Test func aRedeliveredTurnIsAnsweredFromTheDatabaseWithoutASecondCall() async throws {
        try await withPipeline { broker, publisher, replies, store, model, session in
            let turn = TurnEnvelope(kind: .message, sessionID: session, userID: "alice", content: "twice", gatewayID: "it")
            try await publish(turn, with: publisher, broker: broker)
            let first = try await nextReply(replies)
            try await publish(turn, with: publisher, broker: broker)  // the same turn id again
            let second = try await nextReply(replies)
            guard case .done(let one) = first, case .done(let two) = second else {
                Issue.record("expected two done envelopes, got \(first) and \(second)")
                return
            }
            #expect(one.message == two.message)
            #expect(one.turnID == two.turnID)
            #expect(model.calls.load(ordering: .relaxed) == 1)
            #expect(try await store.messages(session: session, afterID: 0, limit: 10).count == 2)
        }
    }

    @Test func anUndecodableTurnIsDeadLetteredAndTheNextOneAnswered() async throws {
        try await withPipeline { broker, publisher, replies, store, model, session in
            let dead = broker.consumer(queue: broker.topology.deadQueue)
            defer { Task { await dead.shutdown() } }
            try await publisher.publish(broker.turnMessage("{not a turn", id: "garbage"))
            let deadLettered = try #require(try await next(of: dead.deliveries))
            #expect(deadLettered.messageID == "garbage")
            #expect(deadLettered.headers["x-first-death-reason"] == "rejected")
            let turn = TurnEnvelope(kind: .message, sessionID: session, userID: "alice", content: "still here?", gatewayID: "it")
            try await publish(turn, with: publisher, broker: broker)
            guard case .done(let done) = try await nextReply(replies) else {
                Issue.record("expected a done envelope")
                return
            }
            #expect(done.message.content == "re: still here?")
        }
    }

    /// The reply's commit succeeded but its answer was lost (a time-out), and the
    /// turn's deadline passed before the retry: the client gets the stored reply, not
    /// `expired` for a message that was answered and stored.
    @Test func aTurnStoredBeforeItsDeadlineIsRepliedEvenWhenTheRetryComesAfterIt() async throws {
        let flakyStore: @Sendable (PostgresConversationStore) -> any ConversationStore = { CommitThenTimeOutStore(base: $0, downFor: 3) }
        try await withPipeline(storeSeenByWorker: flakyStore) {
            broker,
            publisher,
            replies,
            store,
            model,
            session in
            var turn = TurnEnvelope(kind: .message, sessionID: session, userID: "alice", content: "a tempo", gatewayID: "it")
            turn.deadline = Date().addingTimeInterval(1)
            try await publish(turn, with: publisher, broker: broker)
            let reply = try await nextReply(replies)
            guard case .done(let done) = reply else {
                Issue.record("expected the stored reply, got \(reply)")
                return
            }
            #expect(done.message.content == "re: a tempo")
        }
    }

    @Test func aTurnForAnUnknownSessionGetsAnErrorReply() async throws {
        try await withPipeline { broker, publisher, replies, store, model, session in
            // Bind the unknown session's replies too.
            let unknown = UUID()
            try await replies.bind(exchange: broker.topology.repliesExchange, routingKey: unknown.lowercased)
            let turn = TurnEnvelope(kind: .message, sessionID: unknown, userID: "alice", content: "hello?", gatewayID: "it")
            try await publish(turn, with: publisher, broker: broker)
            guard case .error(let failure) = try await nextReply(replies) else {
                Issue.record("expected an error envelope")
                return
            }
            #expect(failure.code == .sessionNotFound)
            #expect(model.calls.load(ordering: .relaxed) == 0)
        }
    }
}

/// Commits a reply, then answers as if the database had timed out, and stays "down"
/// for `downFor` seconds after that (longer than the turn's deadline).
struct CommitThenTimeOutStore: ConversationStore {
    let base: PostgresConversationStore
    let downFor: TimeInterval
    private let downUntil = Locked(Date.distantPast)

    init(base: PostgresConversationStore, downFor: TimeInterval) {
        self.base = base
        self.downFor = downFor
    }

    func createSession(_ session: SessionRecord, context: SessionContext) async throws(StoreError) {
        try await base.createSession(session, context: context)
    }
    func session(id: UUID) async throws(StoreError) -> SessionRecord? {
        try checkUp()
        return try await base.session(id: id)
    }
    func context(ofSession id: UUID) async throws(StoreError) -> SessionContext? { try await base.context(ofSession: id) }
    func reply(forTurn turnID: UUID) async throws(StoreError) -> ChatMessage? {
        try checkUp()
        return try await base.reply(forTurn: turnID)
    }
    func recentMessages(session: UUID, limit: Int) async throws(StoreError) -> [ChatMessage] {
        try await base.recentMessages(session: session, limit: limit)
    }
    func messages(session: UUID, afterID: Int64, limit: Int) async throws(StoreError) -> [ChatMessage] {
        try await base.messages(session: session, afterID: afterID, limit: limit)
    }
    func record(_ turn: CompletedTurn) async throws(StoreError) -> StoredReply {
        try checkUp()
        _ = try await base.record(turn)
        downUntil.withLock { $0 = Date().addingTimeInterval(downFor) }
        throw .unavailable("no answer within the time limit")
    }
    func chatLogs(userID: String?, before: Int64?, limit: Int) async throws(StoreError) -> [ChatLogEntry] {
        try await base.chatLogs(userID: userID, before: before, limit: limit)
    }
    func ping() async throws(StoreError) { try await base.ping() }

    private func checkUp() throws(StoreError) {
        guard Date() >= downUntil.value else { throw .unavailable("still down") }
    }
}
