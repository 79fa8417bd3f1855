import Foundation
import Testing

@testable import Shared

@Suite("Envelopes")
struct EnvelopeTests {
    @Test func turnEnvelopeUsesTheDesignedKeysAndRoundTrips() throws {
        let turn = TurnEnvelope(
            kind: .message,
            sessionID: UUID(),
            userID: "u1",
            content: "olá",
            clientMessageID: "c1",
            gatewayID: "g1",
            sentAt: Date(timeIntervalSince1970: 1_800_000_000.25)
        )
        let bytes = EnvelopeCoding.encode(turn)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(Set(object.keys) == ["v", "kind", "turn_id", "session_id", "user_id", "content", "client_msg_id", "gateway_id", "sent_at"])
        #expect(object["v"] as? Int == 1)
        #expect(object["kind"] as? String == "message")
        #expect((object["sent_at"] as? String)?.hasSuffix("Z") == true)
        #expect(try EnvelopeCoding.decode(TurnEnvelope.self, from: bytes) == turn)
        #expect(turn.messageType == "turn.message")
    }

    @Test func replyEnvelopesCarryTheirKindAndRoundTrip() throws {
        let session = UUID()
        let turn = UUID()
        let message = ChatMessage(id: 42, role: .assistant, content: "oi", timestamp: Date(timeIntervalSince1970: 1_800_000_000))
        let replies: [ReplyEnvelope] = [
            .delta(.init(sessionID: session, turnID: turn, index: 3, text: "o")),
            .done(
                .init(
                    sessionID: session,
                    turnID: turn,
                    message: message,
                    status: "active",
                    completed: false,
                    usage: .init(promptTokens: 5, completionTokens: 2)
                )
            ),
            .error(.init(sessionID: session, turnID: turn, code: .llmUnavailable, message: "down")),
        ]
        for reply in replies {
            let bytes = EnvelopeCoding.encode(reply)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            #expect(object["kind"] as? String == reply.kind)
            #expect(object["v"] as? Int == 1)
            #expect(object["session_id"] as? String != nil)
            #expect(try EnvelopeCoding.decode(ReplyEnvelope.self, from: bytes) == reply)
        }
        #expect(!replies[0].isFinal)
        #expect(replies[1].isFinal && replies[2].isFinal)
    }

    @Test func anUnknownReplyKindIsRejected() {
        let json = #"{"v":1,"kind":"surprise","session_id":"\#(UUID())","turn_id":"\#(UUID())"}"#
        #expect(throws: DecodingError.self) { try EnvelopeCoding.decode(ReplyEnvelope.self, from: Array(json.utf8)) }
    }

    @Test func aTurnWithoutRequiredFieldsIsRejected() {
        let json = #"{"v":1,"kind":"message","session_id":"\#(UUID())"}"#
        #expect(throws: DecodingError.self) { try EnvelopeCoding.decode(TurnEnvelope.self, from: Array(json.utf8)) }
    }

    @Test func topologyNamesFollowThePrefix() {
        let topology = ParleyTopology(prefix: "t1", turnDeliveryLimit: 3, turnQueueMaxLength: 10)
        #expect(topology.turnsQueue == "t1.turns")
        #expect(topology.gatewayQueue(gatewayID: "g") == "t1.gateway.g")
        let turns = topology.shared.queues.first { $0.name == "t1.turns" }
        #expect(turns?.arguments["x-queue-type"] == .string("quorum"))
        #expect(turns?.arguments["x-delivery-limit"] == .int(3))
        #expect(turns?.arguments["x-overflow"] == .string("reject-publish"))
        #expect(turns?.arguments["x-dead-letter-exchange"] == .string("t1.dead"))
        let reply = topology.gateway(id: "g").queues.last
        #expect(reply?.exclusive == true && reply?.autoDelete == true && reply?.durable == false)
    }

    @Test(arguments: [
        ("08006", true), ("53300", true), ("57P01", true), ("57P03", true), ("57014", true), ("40001", true),
        ("23505", false), ("42P01", false), ("22P02", false),
    ])
    func transientDatabaseErrorsAreOutages(sqlState: String, transient: Bool) {
        #expect(StoreError.isTransient(sqlState: sqlState) == transient)
    }
}

/// How each envelope travels: the properties the broker and the other side rely on.
@Suite("Envelopes on the broker")
struct ParleyMessagesTests {
    let topology = ParleyTopology(prefix: "p")
    let session = UUID()

    @Test func aTurnIsPersistentAndMandatoryOnTheTurnsQueue() {
        let turn = TurnEnvelope(kind: .message, sessionID: session, userID: "ana", content: "oi", gatewayID: "g")
        let message = topology.message(for: turn)
        #expect(message.exchange == "p.turns" && message.routingKey == "turn")
        #expect(message.persistent && message.mandatory)
        #expect(message.messageID == turn.turnID.lowercased)
    }

    @Test func repliesAreRoutedBySessionAndOnlyFinalOnesArePersistent() {
        let turnID = UUID()
        let delta = topology.message(for: .delta(.init(sessionID: session, turnID: turnID, index: 0, text: "o")))
        let failure = topology.message(for: .error(.init(sessionID: session, turnID: turnID, code: .llmUnavailable, message: "down")))
        #expect(delta.exchange == "p.replies" && delta.routingKey == session.lowercased && !delta.persistent)
        #expect(failure.persistent && !failure.mandatory && failure.type == "reply.error")
        #expect(delta.messageID != failure.messageID)
    }

    @Test func aCancelGoesToEveryWorkerAndIsNotKept() {
        let turnID = UUID()
        let message = topology.message(for: ControlEnvelope(kind: .cancel, turnID: turnID, sessionID: session))
        #expect(message.exchange == "p.control" && message.routingKey == "" && !message.persistent)
        #expect(message.messageID == "\(turnID.lowercased).cancel" && message.type == "control.cancel")
    }
}
