import Foundation
import Shared

/// Publishes turns to the broker; returns when the broker confirmed.
protocol TurnPublishing: Sendable {
    func publish(_ turn: TurnEnvelope) async throws(AMQPError)
    /// Tells every worker to stop generating `turnID`.
    func cancel(turnID: UUID, sessionID: UUID) async throws(AMQPError)
}

/// Routes the replies of a session to this gateway (binds its reply queue).
protocol ReplySubscriptions: Sendable {
    func subscribe(session: UUID) async throws(AMQPError)
    func unsubscribe(session: UUID) async throws(AMQPError)
}

/// `TurnPublishing` on RabbitMQ: persistent, mandatory, with a confirm.
struct BrokerTurnPublisher: TurnPublishing {
    let publisher: AMQPPublisher
    let topology: ParleyTopology

    func publish(_ turn: TurnEnvelope) async throws(AMQPError) {
        try await publisher.publish(
            AMQPOutgoingMessage(
                exchange: topology.turnsExchange, routingKey: topology.turnRoutingKey, body: EnvelopeCoding.encode(turn),
                messageID: turn.turnID.lowercased, type: turn.messageType, persistent: true, mandatory: true
            )
        )
    }

    func cancel(turnID: UUID, sessionID: UUID) async throws(AMQPError) {
        let signal = ControlEnvelope(kind: .cancel, turnID: turnID, sessionID: sessionID)
        try await publisher.publish(
            AMQPOutgoingMessage(
                exchange: topology.controlExchange, routingKey: "", body: EnvelopeCoding.encode(signal),
                messageID: "\(turnID.lowercased).cancel", type: "control.cancel", persistent: false
            )
        )
    }
}

/// `ReplySubscriptions` on RabbitMQ: binds the gateway's exclusive queue to the
/// replies exchange with the session id as routing key.
struct BrokerReplySubscriptions: ReplySubscriptions {
    let consumer: AMQPConsumer
    let topology: ParleyTopology

    func subscribe(session: UUID) async throws(AMQPError) {
        try await consumer.bind(exchange: topology.repliesExchange, routingKey: session.lowercased)
    }

    func unsubscribe(session: UUID) async throws(AMQPError) {
        try await consumer.unbind(exchange: topology.repliesExchange, routingKey: session.lowercased)
    }
}

extension AMQPError {
    /// The error frame a client sees when its turn could not be handed to the broker.
    var clientFrame: (code: String, message: String) {
        switch self {
        case .nacked:
            ("overloaded", "Parley is overloaded (the turn queue is full); your message was not accepted, try again shortly")
        default:
            ("unavailable", "the message broker is unavailable; your message was not accepted, try again shortly")
        }
    }
}
