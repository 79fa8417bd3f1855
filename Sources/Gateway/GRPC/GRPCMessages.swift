import Foundation
import ParleyGRPC
import Shared

/// Parley's values as the gRPC API's messages (proto/parley/v1/chat.proto).
extension Parley_V1_Message {
    init(_ message: ChatMessage) {
        self.init()
        id = message.id
        role = message.role.rawValue
        content = message.content
        timestamp = message.timestamp.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

extension Parley_V1_Session {
    init(_ record: SessionRecord, context: SessionContext?) {
        self.init()
        sessionID = record.id.lowercased
        status = record.status.rawValue
        topicID = record.topicID ?? 0
        courseID = record.courseID ?? 0
        topicTitle = context?.topicTitle ?? ""
    }
}

extension Parley_V1_Reply {
    init(_ done: ReplyEnvelope.Done) {
        self.init()
        sessionID = done.sessionID.lowercased
        turnID = done.turnID.lowercased
        message = Parley_V1_Message(done.message)
        status = done.status
        completed = done.completed
        cancelled = done.cancelled
    }
}

extension Parley_V1_SendMessageEvent {
    /// The event of a turn's progress; nil for its end (the reply or the error).
    init?(_ event: TurnWaiter.Event, sessionID: UUID, turnID: UUID) {
        self.init()
        switch event {
        case .accepted(let clientMessageID):
            accepted = .with {
                $0.sessionID = sessionID.lowercased
                $0.turnID = turnID.lowercased
                $0.clientMsgID = clientMessageID ?? ""
            }
        case .delta(let delta):
            self.delta = .with {
                $0.turnID = delta.turnID.lowercased
                $0.index = Int64(delta.index)
                $0.text = delta.text
            }
        case .reset(let reset):
            self.reset = .with {
                $0.turnID = reset.turnID.lowercased
                $0.reason = reset.reason
            }
        case .finished:
            return nil
        }
    }
}
