import AMQPClient
import Foundation
import Logging
import ParleySupport
import ServiceLifecycle
import Shared

/// Consumes turns and settles each delivery exactly once:
/// decode → answer (`TurnHandler`) → publish the reply with a confirm → ack.
///
/// - A turn that cannot be decoded is rejected without requeue: it goes to the
///   dead-letter queue at once instead of looping.
/// - While the database or the broker is down, the turn is retried in place with
///   backoff (it stays unacked, so it returns to the queue if this worker dies).
/// - A turn that fails for another reason (a query the database refuses) is
///   requeued after a pause; on its last allowed delivery the client gets an
///   `unavailable` error instead and the turn is dead-lettered for inspection.
/// - Concurrency is the consumer's prefetch: the broker hands out no more.
struct TurnProcessor: Service {
    let consumer: AMQPConsumer
    let publisher: AMQPPublisher
    let handler: TurnHandler
    let topology: ParleyTopology
    /// First pause before a turn is tried again (doubling while an outage lasts).
    let retryPause: Duration
    var maxOutagePause: Duration = .seconds(30)
    /// How long past its deadline a turn is retried through an outage, to find a reply
    /// that may have been stored.
    var expiredGrace: Duration = .seconds(60)
    /// How streamed text is grouped into delta envelopes.
    var coalescer = DeltaCoalescer()
    /// Deltas a second for all of this worker's turns (`DELTA_BUDGET_PER_SECOND`).
    var deltaBudget = DeltaBudget(perSecond: 2000)
    /// Opened when the database schema is current; no turn is taken before.
    var startAfter = Gate.opened
    let logger: Logger

    func run() async {
        await cancelWhenGracefulShutdown { await startAfter.wait() }
        guard startAfter.isOpen else { return }  // shut down before the schema was ready
        await withDiscardingTaskGroup { group in
            for await delivery in consumer.deliveries.cancelOnGracefulShutdown() {
                group.addTask { await process(delivery) }
            }
            logger.info("stopped taking turns; finishing the ones in flight")
        }
    }

    func process(_ delivery: AMQPDelivery) async {
        var logger = self.logger
        logger[metadataKey: "delivery_tag"] = "\(delivery.deliveryTag)"
        guard consumer.canSettle(delivery) else {
            // Received before a reconnect: the broker has requeued it already.
            logger.info("skipping a delivery of a replaced connection")
            return
        }
        guard let turn = await decodeOrDeadLetter(delivery, logger: logger) else { return }
        logger[metadataKey: "session_id"] = "\(turn.sessionID)"
        logger[metadataKey: "turn_id"] = "\(turn.turnID)"
        if delivery.redelivered { logger[metadataKey: "redelivered"] = "true" }
        let inFlight = ParleyMetrics.workerTurnsInFlight.meter()
        inFlight.increment()
        let started = ContinuousClock.now
        defer {
            inFlight.decrement()
            ParleyMetrics.workerTurnDuration.record(started.duration(to: .now))
        }
        await answerAndSettle(turn, delivery: delivery, logger: logger)
    }

    /// The delivery's turn; nil when it cannot be decoded, and then it is dead-lettered
    /// at once rather than redelivered in a loop.
    private func decodeOrDeadLetter(_ delivery: AMQPDelivery, logger: Logger) async -> TurnEnvelope? {
        do {
            return try EnvelopeCoding.decode(TurnEnvelope.self, from: delivery.body)
        } catch {
            logger.error("undecodable turn; dead-lettering it", metadata: ["error": "\(error)", "message_id": "\(delivery.messageID)"])
            await settle(delivery, logger: logger) { try await consumer.reject(delivery, requeue: false) }
            ParleyMetrics.workerTurns.increment(by: 1, [("outcome", "dead_lettered")])
            return nil
        }
    }

    /// Answers the turn, publishes the answer and settles the delivery — each exactly
    /// once; through an outage of the database or the broker, in place, again.
    private func answerAndSettle(_ turn: TurnEnvelope, delivery: AMQPDelivery, logger: Logger) async {
        var backoff = Backoff(initial: retryPause, maximum: maxOutagePause)
        deltaBudget.open()
        defer { deltaBudget.close() }
        var coalescer = self.coalescer
        coalescer.budget = deltaBudget
        let deltas = DeltaStream(turn: turn, publisher: publisher, topology: topology, coalescer: coalescer, logger: logger)
        let attempt = TurnAttempt(takeover: delivery.redelivered, copy: turn.copyID, isCurrent: { [consumer] in consumer.canSettle(delivery) })
        // The answer, once there is one: an outage while publishing it retries only the
        // publish (an error reply is settled in the ledger already and would otherwise
        // be found "settled" and dropped).
        var answer: ReplyEnvelope?
        var isRetry = false
        while true {
            defer { isRetry = true }
            do {
                let reply: ReplyEnvelope
                if let answer {
                    reply = answer
                } else {
                    if isRetry { await deltas.restart(because: "retrying after an outage") }
                    reply = try await handler.reply(to: turn, attempt: attempt, logger: logger) { await deltas.handle($0) }
                    answer = reply
                    await deltas.finish()
                }
                try await publish(reply)
                await settle(delivery, logger: logger) { try await consumer.ack(delivery) }
                logger.info("turn answered", metadata: ["reply": "\(reply.kind)"])
                ParleyMetrics.workerTurns.increment(by: 1, [("outcome", Self.outcome(of: reply))])
                return
            } catch let failure as TurnFailure where !Self.isOutage(failure) {
                await endWithoutAnswer(failure, turn: turn, delivery: delivery, attempt: attempt, logger: logger)
                return
            } catch let failure where Self.isOutage(failure) {
                let ride = OutageContext(turn: turn, delivery: delivery, attempt: attempt, answered: answer != nil)
                guard await outageAllowsRetry(failure, ride, backoff: &backoff, logger: logger) else { return }
            } catch {
                await retryLater(delivery, turn: turn, attempt: attempt, because: "\(error)", logger: logger)
                return
            }
        }
    }

    /// The handler ended without an answer for this delivery to publish.
    private func endWithoutAnswer(
        _ failure: TurnFailure,
        turn: TurnEnvelope,
        delivery: AMQPDelivery,
        attempt: TurnAttempt,
        logger: Logger
    ) async {
        switch failure {
        case .superseded:
            // A redelivery took the turn over (or a copy of it is answered elsewhere):
            // this attempt publishes nothing; a delivery still ours is done.
            logger.info("another attempt answers this turn; this one stops")
            if consumer.canSettle(delivery) { await settle(delivery, logger: logger) { try await consumer.ack(delivery) } }
            ParleyMetrics.workerTurns.increment(by: 1, [("outcome", "superseded")])
        case .alreadySettled(let state):
            logger.info("the turn had ended before this delivery; dropping it", metadata: ["state": "\(state.rawValue)"])
            await settle(delivery, logger: logger) { try await consumer.ack(delivery) }
            ParleyMetrics.workerTurns.increment(by: 1, [("outcome", "duplicate")])
        case .interrupted:
            logger.info("stopping: the turn goes back to the queue")
            await giveBack(delivery, turn: turn, attempt: attempt, logger: logger)
        default:
            await retryLater(delivery, turn: turn, attempt: attempt, because: "\(failure)", logger: logger)
        }
    }

    /// A turn caught in an outage.
    private struct OutageContext {
        let turn: TurnEnvelope
        let delivery: AMQPDelivery
        let attempt: TurnAttempt
        /// An answer exists, its publish failed.
        let answered: Bool
    }

    /// The database or the broker is down: keeps the turn (unacked, so it returns to
    /// the queue if this worker dies) and pauses before the next try — an outage must
    /// not use up the turn's delivery limit. False when the delivery was settled
    /// instead (shutdown, deadline) or is no longer this worker's.
    private func outageAllowsRetry(_ failure: any Error, _ outage: OutageContext, backoff: inout Backoff, logger: Logger) async -> Bool {
        let (turn, delivery, attempt) = (outage.turn, outage.delivery, outage.attempt)
        guard consumer.canSettle(delivery) else {
            logger.warning("broker connection replaced during an outage; the broker has requeued the turn")
            return false
        }
        guard !Task.isShuttingDownGracefully, !Task.isCancelled else {
            await giveBack(delivery, turn: turn, attempt: attempt, logger: logger)
            return false
        }
        // Past its deadline the turn is no longer generated (the handler refuses to),
        // but its reply may have been stored by a commit whose answer was lost:
        // retrying a while longer replays it. Then the turn is given up.
        guard !turn.isExpired(at: Date().addingTimeInterval(-expiredGrace.timeInterval)) else {
            logger.error("turn reached its deadline during an outage; dropping it", metadata: ["error": "\(failure)"])
            // Said only when it is true: a reply this attempt sent to the store may have
            // been stored (the client heard `reply_timeout`, "may still be answered").
            if !outage.answered, !attempt.recordAttempted.value {
                let expired = ReplyEnvelope.error(
                    .init(
                        sessionID: turn.sessionID,
                        turnID: turn.turnID,
                        code: .expired,
                        message: "the message could not be answered before its deadline; send it again"
                    )
                )
                try? await publish(expired)
            }
            await settle(delivery, logger: logger) { try await consumer.reject(delivery, requeue: false) }
            ParleyMetrics.workerTurns.increment(by: 1, [("outcome", "expired")])
            return false
        }
        let pause = backoff.next()
        logger.warning("dependency unavailable; retrying the turn in place", metadata: ["error": "\(failure)", "pause": "\(pause)"])
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
        return true
    }

    /// Returns a turn to the queue unanswered (this worker stops): its hold is
    /// released so that the next delivery may generate it at once.
    private func giveBack(_ delivery: AMQPDelivery, turn: TurnEnvelope, attempt: TurnAttempt, logger: Logger) async {
        try? await handler.holding.ledger.release(turnID: turn.turnID, attempt: attempt.ledger)
        await settle(delivery, logger: logger) { try await consumer.reject(delivery, requeue: true) }
        ParleyMetrics.workerTurns.increment(by: 1, [("outcome", "retried")])
    }

    /// The `outcome` label of a turn that was answered with `reply`.
    static func outcome(of reply: ReplyEnvelope) -> String {
        switch reply {
        case .done(let done) where done.cancelled: "cancelled"
        case .done: "answered"
        case .error(let failure) where failure.code == .cancelled: "cancelled"
        case .error(let failure) where failure.code == .expired: "expired"
        case .error: "failed"
        case .delta, .reset: "answered"
        }
    }

    /// Failures that go away when a dependency comes back, as opposed to failures of
    /// this turn (a query the database refuses, a reply the broker nacks).
    static func isOutage(_ error: any Error) -> Bool {
        switch error {
        case TurnFailure.store(.unavailable): true
        case AMQPError.notConnected, AMQPError.connectionLost, AMQPError.confirmTimeout: true
        default: false
        }
    }

    private func publish(_ reply: ReplyEnvelope) async throws(AMQPError) {
        try await publisher.publish(topology.message(for: reply))
    }

    private func retryLater(_ delivery: AMQPDelivery, turn: TurnEnvelope, attempt: TurnAttempt, because reason: String, logger: Logger) async {
        // Quorum queues count deliveries in `x-delivery-count` (absent on the first);
        // a header from the broker is outside input: clamped, never an overflow.
        let previousDeliveries = min(max(Int(delivery.headers["x-delivery-count"] ?? "0") ?? 0, 0), topology.turnDeliveryLimit)
        let isLastAttempt = previousDeliveries + 1 >= topology.turnDeliveryLimit
        if isLastAttempt {
            logger.error("turn failed on its last allowed delivery; telling the client and dead-lettering it", metadata: ["error": "\(reason)"])
            let settled = SettledFailure(
                code: .unavailable,
                message: "the message could not be processed and was set aside for the operator; nothing was stored"
            )
            let failure = ReplyEnvelope.error(.init(sessionID: turn.sessionID, turnID: turn.turnID, code: settled.code, message: settled.message))
            // Only while this attempt may end the turn: otherwise another attempt answers it.
            if (try? await handler.holding.ledger.settle(turnID: turn.turnID, attempt: attempt.ledger, as: .failed, failure: settled)) != false {
                try? await publish(failure)
            }
            await settle(delivery, logger: logger) { try await consumer.reject(delivery, requeue: false) }
            ParleyMetrics.workerTurns.increment(by: 1, [("outcome", "dead_lettered")])
        } else {
            logger.warning("turn failed; requeueing it after a pause", metadata: ["error": "\(reason)", "deliveries": "\(previousDeliveries + 1)"])
            try? await Task.sleep(for: retryPause)
            try? await handler.holding.ledger.release(turnID: turn.turnID, attempt: attempt.ledger)
            await settle(delivery, logger: logger) { try await consumer.reject(delivery, requeue: true) }
            ParleyMetrics.workerTurns.increment(by: 1, [("outcome", "retried")])
        }
    }

    private func settle(_ delivery: AMQPDelivery, logger: Logger, _ body: () async throws -> Void) async {
        do {
            try await body()
        } catch {
            // The broker requeues an unsettled delivery when the connection goes;
            // the redelivery is answered from the database.
            logger.warning("could not settle the delivery", metadata: ["error": "\(error)"])
        }
    }
}
