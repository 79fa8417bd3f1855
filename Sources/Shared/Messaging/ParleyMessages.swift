import AMQPClient
import Foundation

/// How each envelope travels on the broker: its exchange, routing key, message id and
/// type, and whether it is persistent — the one place that says so, for the gateway
/// and the workers alike.
extension ParleyTopology {
    /// A user turn: to the turns queue, persistent and mandatory (a turn no queue
    /// takes comes back as a refusal, not lost).
    public func message(for turn: TurnEnvelope) -> AMQPOutgoingMessage {
        AMQPOutgoingMessage(
            exchange: turnsExchange,
            routingKey: turnRoutingKey,
            body: EnvelopeCoding.encode(turn),
            messageID: turn.turnID.lowercased,
            type: turn.messageType,
            persistent: true,
            mandatory: true
        )
    }

    /// A reply envelope: to the replies exchange, routing key = session id (the
    /// gateways holding the session's sockets are bound to it); final ones persistent.
    public func message(for reply: ReplyEnvelope) -> AMQPOutgoingMessage {
        AMQPOutgoingMessage(
            exchange: repliesExchange,
            routingKey: reply.sessionID.lowercased,
            body: EnvelopeCoding.encode(reply),
            messageID: "\(reply.turnID.lowercased).\(reply.kind)",
            type: "reply.\(reply.kind)",
            persistent: reply.isFinal
        )
    }

    /// A control signal (a cancel): to every worker's control queue, not persistent
    /// (a worker that starts later has no generation of that turn to stop).
    public func message(for signal: ControlEnvelope) -> AMQPOutgoingMessage {
        AMQPOutgoingMessage(
            exchange: controlExchange,
            routingKey: "",
            body: EnvelopeCoding.encode(signal),
            messageID: "\(signal.turnID.lowercased).\(signal.kind.rawValue)",
            type: "control.\(signal.kind.rawValue)",
            persistent: false
        )
    }
}
