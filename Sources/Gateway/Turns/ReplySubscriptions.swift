import AMQPClient
import Foundation
import Shared

/// Routes the replies of a session to this gateway (binds its reply queue).
protocol ReplySubscriptions: Sendable {
    func subscribe(session: UUID) async throws(AMQPError)
    func unsubscribe(session: UUID) async throws(AMQPError)
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
