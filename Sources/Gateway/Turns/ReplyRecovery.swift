import Foundation
import Logging
import Shared

/// Fetches from the database the replies that a reconnect of this gateway's reply
/// queue may have swallowed. The queue is exclusive to the connection: while the
/// gateway reconnects to the broker, replies routed to it have nowhere to go. A turn
/// whose reply is stored by then is answered from the database (a reply that arrives
/// through the queue as well is dropped by the pipeline as a duplicate); one still being
/// generated is answered through the new queue. Replies that are not stored (errors)
/// still end in `reply_timeout`.
struct ReplyRecovery: Sendable {
    let pipeline: TurnPipeline
    let store: any ConversationStore
    let logger: Logger

    /// Delivers the stored replies of the turns in flight; returns how many it found.
    @discardableResult
    func recover() async -> Int {
        var recovered = 0
        for (sessionID, turnID) in await pipeline.turnsInFlight() {
            let message: ChatMessage?
            let status: SessionRecord.Status?
            do {
                message = try await store.reply(forTurn: turnID)
                status = message == nil ? nil : try await store.session(id: sessionID)?.status
            } catch {
                logger.warning("cannot look for a reply lost in a reconnect", metadata: ["turn_id": "\(turnID.lowercased)", "error": "\(error)"])
                continue
            }
            guard let message else { continue }
            logger.info(
                "answered a turn from the database after a reconnect",
                metadata: ["session_id": "\(sessionID.lowercased)", "turn_id": "\(turnID.lowercased)"]
            )
            let completed = status == .completed
            let reply = ReplyEnvelope.done(
                .init(
                    sessionID: sessionID,
                    turnID: turnID,
                    message: message,
                    status: (status ?? .active).rawValue,
                    completed: completed,
                    usage: TokenUsage()
                )
            )
            recovered += 1
            await pipeline.deliver(reply)
        }
        return recovered
    }
}
