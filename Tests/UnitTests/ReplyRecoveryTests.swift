import Foundation
import Logging
import ParleyTestSupport
import Testing

@testable import Gateway
@testable import Shared

@Suite("Reply recovery after a reconnect")
struct ReplyRecoveryTests {
    let logger = Logger(label: "test")

    @Test func storedRepliesOfTurnsInFlightAreDeliveredOnceAndTheOthersWait() async throws {
        let store = InMemoryConversationStore()
        let publisher = ScriptedTurnPublisher(failing: [])
        let dispatcher = TurnDispatcher(publisher: publisher, ledger: InMemoryTurnLedger(), turnLifetime: .seconds(50), logger: logger)
        let pipeline = TurnPipeline(
            subscriptions: RecordingSubscriptions(),
            dispatcher: dispatcher,
            maxWaitingTurns: 4,
            replyTimeout: .seconds(60),
            logger: logger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pipeline.run() }
            defer { group.cancelAll() }
            try await recoverAfterAReconnect(pipeline: pipeline, store: store)
        }
    }

    func recoverAfterAReconnect(pipeline: TurnPipeline, store: InMemoryConversationStore) async throws {
        let socket = FrameOutbox(userID: "alice", capacity: 50, logger: logger)
        var turns: [PendingTurn] = []
        for _ in 0..<2 {
            let session = SessionRecord(id: UUID(), userID: "alice", topicID: 1)
            try await store.createSession(session)
            try await pipeline.attach(socket, to: session.id)
            let turn = PendingTurn(
                envelope: TurnEnvelope(kind: .message, sessionID: session.id, userID: "alice", content: "oi", gatewayID: "g"),
                origin: socket
            )
            try await pipeline.submit(turn)
            turns.append(turn)
        }
        _ = try await eventually { await pipeline.turnsInFlight().count == 2 ? true : nil }
        // The first turn was answered (and completed its session) while the queue was
        // being replaced: its reply is stored, never delivered. The second is still
        // being generated.
        var answered = CompletedTurn(
            sessionID: turns[0].envelope.sessionID,
            turnID: turns[0].envelope.turnID,
            userContent: "oi",
            replyContent: "Parabéns!",
            rawReply: "Parabéns! {TOPIC_COMPLETED}",
            model: "m",
            usage: .init(),
            latencyMilliseconds: 1
        )
        answered.completesSession = true
        _ = try await store.record(answered)
        let recovery = ReplyRecovery(pipeline: pipeline, store: store, logger: logger)
        #expect(await recovery.recover() == 1)
        #expect(await recovery.recover() == 0)
        #expect(await pipeline.turnsInFlight().map(\.turnID) == [turns[1].envelope.turnID])
        socket.finish()
        var replies: [[String: Any]] = []
        for await frame in socket.frames {
            let json = (try? JSONSerialization.jsonObject(with: Data(frame.text.utf8)) as? [String: Any]) ?? [:]
            if json["type"] as? String == "reply" { replies.append(json) }
        }
        #expect(replies.count == 1)
        #expect(replies.first?["turn_id"] as? String == turns[0].envelope.turnID.lowercased)
        #expect(replies.first?["completed"] as? Bool == true)
        #expect((replies.first?["message"] as? [String: Any])?["content"] as? String == "Parabéns!")
    }
}
