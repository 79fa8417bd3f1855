import AMQPClient
import Foundation
import Shared

/// What a listener is told about its turn along the pipeline: the frames and
/// errors of `SessionTurnQueue` and `TurnPipeline`, with their texts in one place.
extension ServerFrame {
    static func accepted(_ turn: TurnEnvelope) -> ServerFrame {
        .accepted(sessionID: turn.sessionID, turnID: turn.turnID, clientMessageID: turn.clientMessageID)
    }

    static func turnRefused(_ turn: TurnEnvelope, _ refusal: (code: ErrorCode, message: String)) -> ServerFrame {
        .error(code: refusal.code, message: refusal.message, context: .about(turn))
    }

    static func unconfirmed(_ turn: TurnEnvelope) -> ServerFrame {
        .error(
            code: .unconfirmed,
            message:
                "the message broker did not confirm your message; it may still be answered (watch for turn_id) — sending it again may answer it twice",
            context: .about(turn)
        )
    }

    static func cancelledWhileWaiting(_ turn: TurnEnvelope) -> ServerFrame {
        .error(code: .cancelled, message: "the message was cancelled before it was sent to a worker", context: .about(turn))
    }

    static func replyTimedOut(_ turn: TurnEnvelope) -> ServerFrame {
        .error(
            code: .replyTimeout,
            message: "no reply arrived in time; the message was accepted and may still be answered later",
            context: .about(turn)
        )
    }

    static func completedBeforeSent(_ turn: TurnEnvelope) -> ServerFrame {
        .error(code: .sessionCompleted, message: "the session was completed before this message was sent; it was not answered", context: .about(turn))
    }

    /// A worker's failure reply; `clientMessageID` is known only to the turn's gateway.
    static func replyFailed(_ failure: ReplyEnvelope.Failure, clientMessageID: String?) -> ServerFrame {
        .error(
            code: failure.code,
            message: failure.message,
            context: .init(sessionID: failure.sessionID, turnID: failure.turnID, clientMessageID: clientMessageID)
        )
    }
}

extension ServerFrame.ErrorContext {
    static func about(_ turn: TurnEnvelope) -> Self {
        .init(sessionID: turn.sessionID, turnID: turn.turnID, clientMessageID: turn.clientMessageID)
    }
}

extension ClientError {
    static func sessionNotOpen(_ turn: TurnEnvelope) -> ClientError {
        ClientError(code: .sessionNotOpen, message: "attach to the session before sending to it", clientMessageID: turn.clientMessageID)
    }

    static func sessionCompleted(_ turn: TurnEnvelope) -> ClientError {
        ClientError(
            code: .sessionCompleted,
            message: "session \(turn.sessionID.lowercased) is completed and takes no more messages",
            clientMessageID: turn.clientMessageID
        )
    }

    static func tooManyPending(_ turn: TurnEnvelope, limit: Int) -> ClientError {
        ClientError(
            code: .tooManyPending,
            message: "\(limit) messages of this session are already waiting for the reply in progress; wait for it",
            clientMessageID: turn.clientMessageID
        )
    }
}

extension AMQPError {
    /// The error a client sees when its turn could not be handed to the broker.
    var clientRefusal: (code: ErrorCode, message: String) {
        switch self {
        case .nacked:
            (.overloaded, "Parley is overloaded (the turn queue is full); your message was not accepted, try again shortly")
        default:
            (.unavailable, "the message broker is unavailable; your message was not accepted, try again shortly")
        }
    }
}
