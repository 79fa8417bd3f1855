import AMQPClient
import Foundation
import Logging
import ParleySupport
import Shared

/// Hands one turn to the broker: enters it in its session's order (the ledger),
/// publishes it until the broker confirms or refuses it, and withdraws it from the
/// order when it was certainly not sent. `TurnPipeline` calls it for each turn its
/// sessions release and performs what the outcome means for the session.
struct TurnDispatcher: Sendable {
    let publisher: any TurnPublishing
    /// Where each turn takes its place in its session's order before it is published:
    /// workers generate a session's turns in that order, whichever gateway sent them.
    let ledger: any TurnLedger
    /// How long a worker may take for a turn, from its publication; kept shorter than
    /// the pipeline's reply timeout so that no worker still works on a turn when the
    /// pipeline gives up on it and releases the session's next one.
    let turnLifetime: Duration
    /// How long to keep re-publishing a turn whose first publish went unconfirmed.
    var doubtResolutionTime: Duration = .seconds(20)
    let logger: Logger

    func publish(_ turn: PendingTurn) async -> PublishOutcome {
        var turn = turn
        turn.envelope.deadline = Date().addingTimeInterval(turnLifetime.timeInterval)
        let outcome = await registerAndPublish(turn)
        ParleyMetrics.turnsPublished.increment(by: 1, [("outcome", outcome.label), ("channel", turn.origin.channel.rawValue)])
        return outcome
    }

    private func registerAndPublish(_ turn: PendingTurn) async -> PublishOutcome {
        let metadata: Logger.Metadata = ["session_id": "\(turn.envelope.sessionID.lowercased)", "turn_id": "\(turn.envelope.turnID.lowercased)"]
        do {
            try await ledger.register(turn.envelope)
        } catch {
            // The database is down (or not migrated yet): the turn is still accepted —
            // the broker keeps it, and this gateway's own order holds — and the worker
            // that takes it enters it in the ledger (docs/decisions.md).
            logger.warning("turn not entered in its session's order; publishing it anyway", metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
        let outcome = await publishResolvingDoubt(turn)
        if case .refused = outcome {
            // Certainly not in the queue: the session's next turn must not wait for it.
            var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1))
            for attempt in 1...3 {
                do {
                    try await ledger.withdraw(turn.envelope)
                    break
                } catch {
                    if attempt == 3 {
                        logger.warning(
                            "a refused turn stays in its session's order until its deadline",
                            metadata: metadata.merging(["error": "\(error)"]) { $1 }
                        )
                    } else {
                        try? await Task.sleep(for: backoff.next())
                    }
                }
            }
        }
        return outcome
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
                // Each publish is a copy of its own: a worker's takeover is limited to
                // redeliveries of the copy it holds.
                var copy = turn.envelope
                copy.copyID = UUID()
                try await publisher.publish(copy)
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
