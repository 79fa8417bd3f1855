import Foundation
import Logging
import Shared

/// Publishes the turns the hub releases, one after another, and reports each
/// outcome back to the hub (which may release the session's next turn).
struct TurnDispatcher: Sendable {
    let hub: SessionHub
    let publisher: any TurnPublishing
    /// How long a worker may take for a turn, from its publication; kept shorter than
    /// the hub's reply timeout so that no worker still works on a turn when the hub
    /// gives up on it and releases the session's next one.
    let turnLifetime: Duration
    /// How long to keep re-publishing a turn whose first publish went unconfirmed.
    var doubtResolutionTime: Duration = .seconds(20)
    let logger: Logger

    func publish(startingWith first: PendingTurn?) async {
        var next = first
        while var turn = next {
            turn.envelope.deadline = Date().addingTimeInterval(turnLifetime.timeInterval)
            let outcome = await publishResolvingDoubt(turn)
            ParleyMetrics.turnsPublished.increment(by: 1, [("outcome", outcome.label)])
            next = await hub.published(turn, outcome: outcome)
        }
    }

    /// A publish written but not confirmed (connection lost, confirm timeout) may or
    /// may not have reached the queue. Publishing the same turn again is safe — a
    /// worker answers a turn id once — so try again until the broker confirms, or
    /// report the doubt.
    private func publishResolvingDoubt(_ turn: PendingTurn) async -> PublishOutcome {
        var metadata: Logger.Metadata = ["session_id": "\(turn.envelope.sessionID.lowercased)", "turn_id": "\(turn.envelope.turnID.lowercased)"]
        var doubt: AMQPError?
        var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        let giveUpAt = ContinuousClock.now.advanced(by: doubtResolutionTime)
        while true {
            do {
                try await publisher.publish(turn.envelope)
                return .confirmed
            } catch {
                metadata["error"] = "\(error)"
                if doubt == nil, !error.publishOutcomeIsUnknown {
                    logger.warning("turn refused by the broker", metadata: metadata)
                    return .refused(error)
                }
                doubt = doubt ?? error
                guard ContinuousClock.now < giveUpAt, !Task.isCancelled else {
                    logger.error("turn publish unconfirmed; giving up re-publishing", metadata: metadata)
                    return .uncertain(doubt ?? error)
                }
                logger.warning("turn publish unconfirmed; publishing it again", metadata: metadata)
                try? await Task.sleep(for: backoff.next())
            }
        }
    }
}

extension PublishOutcome {
    /// The `outcome` label of `parley_gateway_turns_published_total`.
    var label: String {
        switch self {
        case .confirmed: "confirmed"
        case .refused: "refused"
        case .uncertain: "uncertain"
        }
    }
}
