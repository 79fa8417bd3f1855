import Foundation
import Logging
import ServiceLifecycle
import Shared

/// Consumes turns and settles each delivery exactly once:
/// decode → answer (`TurnHandler`) → publish the reply with a confirm → ack.
///
/// - A turn that cannot be decoded is rejected without requeue: it goes to the
///   dead-letter queue at once instead of looping.
/// - A turn that fails for a reason a retry can fix (database down, reply not
///   confirmed) is requeued after a pause; on its last allowed delivery the client
///   gets an `unavailable` error instead and the turn is dead-lettered for inspection.
/// - Concurrency is the consumer's prefetch: the broker hands out no more.
struct TurnProcessor: Service {
    let consumer: AMQPConsumer
    let publisher: AMQPPublisher
    let handler: TurnHandler
    let topology: ParleyTopology
    let retryPause: Duration
    /// Opened when the database schema is current; no turn is taken before.
    var startAfter = Gate.opened
    let logger: Logger

    func run() async {
        await startAfter.wait()
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
        let turn: TurnEnvelope
        do {
            turn = try EnvelopeCoding.decode(TurnEnvelope.self, from: delivery.body)
        } catch {
            logger.error("undecodable turn; dead-lettering it", metadata: ["error": "\(error)", "message_id": "\(delivery.messageID)"])
            await settle(delivery, logger: logger) { try await consumer.reject(delivery, requeue: false) }
            return
        }
        logger[metadataKey: "session_id"] = "\(turn.sessionID)"
        logger[metadataKey: "turn_id"] = "\(turn.turnID)"
        if delivery.redelivered { logger[metadataKey: "redelivered"] = "true" }

        do {
            let reply = try await handler.reply(to: turn, logger: logger)
            try await publish(reply)
            await settle(delivery, logger: logger) { try await consumer.ack(delivery) }
            logger.info("turn answered", metadata: ["reply": "\(reply.kind)"])
        } catch {
            await retryLater(delivery, turn: turn, because: "\(error)", logger: logger)
        }
    }

    private func publish(_ reply: ReplyEnvelope) async throws(AMQPError) {
        try await publisher.publish(
            AMQPOutgoingMessage(
                exchange: topology.repliesExchange, routingKey: reply.sessionID.lowercased,
                body: EnvelopeCoding.encode(reply), messageID: "\(reply.turnID.lowercased).\(reply.kind)",
                type: "reply.\(reply.kind)", persistent: reply.isFinal
            )
        )
    }

    private func retryLater(_ delivery: AMQPDelivery, turn: TurnEnvelope, because reason: String, logger: Logger) async {
        // Quorum queues count deliveries in `x-delivery-count` (absent on the first).
        let previousDeliveries = Int(delivery.headers["x-delivery-count"] ?? "0") ?? 0
        let isLastAttempt = previousDeliveries + 1 >= topology.turnDeliveryLimit
        if isLastAttempt {
            logger.error("turn failed on its last allowed delivery; telling the client and dead-lettering it", metadata: ["error": "\(reason)"])
            let failure = ReplyEnvelope.error(
                .init(sessionID: turn.sessionID, turnID: turn.turnID, code: "unavailable", message: "the turn could not be processed: \(reason)")
            )
            try? await publish(failure)
            await settle(delivery, logger: logger) { try await consumer.reject(delivery, requeue: false) }
        } else {
            logger.warning("turn failed; requeueing it after a pause", metadata: ["error": "\(reason)", "deliveries": "\(previousDeliveries + 1)"])
            try? await Task.sleep(for: retryPause)
            await settle(delivery, logger: logger) { try await consumer.reject(delivery, requeue: true) }
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
