import AMQPClient
import Logging
import ServiceLifecycle
import Shared

/// Receives the control signals every worker gets (`parley.control`, fanout) and
/// cancels the turns it is asked to.
struct ControlListener: Service {
    let consumer: AMQPConsumer
    let cancellations: TurnCancellations
    let logger: Logger

    func run() async {
        for await delivery in consumer.deliveries.cancelOnGracefulShutdown() {
            do {
                let signal = try EnvelopeCoding.decode(ControlEnvelope.self, from: delivery.body)
                switch signal.kind {
                case .cancel:
                    logger.info(
                        "cancel requested",
                        metadata: ["turn_id": "\(signal.turnID.lowercased)", "session_id": "\(signal.sessionID.lowercased)"]
                    )
                    cancellations.cancel(signal.turnID, session: signal.sessionID)
                }
            } catch {
                logger.warning("undecodable control signal dropped", metadata: ["error": "\(error)"])
            }
            try? await consumer.ack(delivery)
        }
    }
}
