import AMQPClient
import Foundation
import Shared

/// A turn a socket (or a REST request) sent, not yet answered.
struct PendingTurn: Sendable {
    var envelope: TurnEnvelope
    /// Where the turn's own notices go (`accepted`, a refusal); the reply goes to
    /// every listener of the session.
    var origin: FrameOutbox
    /// Whether the origin hears `accepted` when the broker confirmed the turn. A
    /// WebSocket client sent no message for a session's opening, so hears none then.
    var announcesAcceptance: Bool

    init(envelope: TurnEnvelope, origin: FrameOutbox, announcesAcceptance: Bool? = nil) {
        self.envelope = envelope
        self.origin = origin
        self.announcesAcceptance = announcesAcceptance ?? (envelope.kind == .message)
    }

    var turnID: UUID { envelope.turnID }
    var sessionID: UUID { envelope.sessionID }
}

/// How the broker took a turn.
enum PublishOutcome: Sendable {
    /// Confirmed: the turn is in the queue.
    case confirmed
    /// Certainly not in the queue (nacked, unroutable, no connection).
    case refused(AMQPError)
    /// Written, but never confirmed: it may or may not be in the queue.
    case uncertain(AMQPError)

    /// The `outcome` label of `parley_gateway_turns_published_total`.
    var label: String {
        switch self {
        case .confirmed: "confirmed"
        case .refused: "refused"
        case .uncertain: "uncertain"
        }
    }
}
