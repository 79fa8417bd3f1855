import Logging
import Shared

/// Publishes the turns the hub releases, one after another, and reports each
/// outcome back to the hub (which may release the session's next turn).
struct TurnDispatcher: Sendable {
    let hub: SessionHub
    let publisher: any TurnPublishing
    let logger: Logger

    func publish(startingWith first: PendingTurn?) async {
        var next = first
        while let turn = next {
            var error: AMQPError?
            do {
                try await publisher.publish(turn.envelope)
            } catch let failure {
                error = failure
                logger.warning(
                    "turn not accepted by the broker",
                    metadata: ["session_id": "\(turn.envelope.sessionID.lowercased)", "turn_id": "\(turn.envelope.turnID.lowercased)", "error": "\(failure)"]
                )
            }
            next = await hub.published(turn, error: error)
        }
    }
}
