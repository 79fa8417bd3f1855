import AMQPClient
import Foundation
import Shared

/// Publishes turns to the broker; returns when the broker confirmed.
protocol TurnPublishing: Sendable {
    func publish(_ turn: TurnEnvelope) async throws(AMQPError)
    /// Tells every worker to stop generating `turnID`.
    func cancel(turnID: UUID, sessionID: UUID) async throws(AMQPError)
}

/// `TurnPublishing` on RabbitMQ: persistent, mandatory, with a confirm.
struct BrokerTurnPublisher: TurnPublishing {
    let publisher: AMQPPublisher
    let topology: ParleyTopology

    func publish(_ turn: TurnEnvelope) async throws(AMQPError) {
        try await publisher.publish(
            AMQPOutgoingMessage(
                exchange: topology.turnsExchange,
                routingKey: topology.turnRoutingKey,
                body: EnvelopeCoding.encode(turn),
                messageID: turn.turnID.lowercased,
                type: turn.messageType,
                persistent: true,
                mandatory: true
            )
        )
    }

    func cancel(turnID: UUID, sessionID: UUID) async throws(AMQPError) {
        let signal = ControlEnvelope(kind: .cancel, turnID: turnID, sessionID: sessionID)
        try await publisher.publish(
            AMQPOutgoingMessage(
                exchange: topology.controlExchange,
                routingKey: "",
                body: EnvelopeCoding.encode(signal),
                messageID: "\(turnID.lowercased).cancel",
                type: "control.cancel",
                persistent: false
            )
        )
    }
}
