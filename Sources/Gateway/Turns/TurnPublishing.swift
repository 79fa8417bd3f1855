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
        try await publisher.publish(topology.message(for: turn))
    }

    func cancel(turnID: UUID, sessionID: UUID) async throws(AMQPError) {
        try await publisher.publish(topology.message(for: ControlEnvelope(kind: .cancel, turnID: turnID, sessionID: sessionID)))
    }
}
