import Foundation
import Logging
import ServiceLifecycle
import Shared

/// Consumes this gateway's reply queue and hands each envelope to the hub, which
/// fans it out to the session's sockets. Also expires turns whose reply is overdue.
struct ReplyRouter: Service {
    let consumer: AMQPConsumer
    let hub: SessionHub
    let dispatcher: TurnDispatcher
    let logger: Logger

    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await expireOverdueTurns() }
            for await delivery in consumer.deliveries.cancelOnGracefulShutdown() {
                do {
                    let reply = try EnvelopeCoding.decode(ReplyEnvelope.self, from: delivery.body)
                    if let next = await hub.deliver(reply) {
                        group.addTask { await dispatcher.publish(startingWith: next) }
                    }
                } catch {
                    logger.error("undecodable reply envelope dropped", metadata: ["error": "\(error)", "routing_key": "\(delivery.routingKey)"])
                }
                try? await consumer.ack(delivery)
            }
            group.cancelAll()
        }
    }

    private func expireOverdueTurns() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .seconds(1))
            } catch {
                return
            }
            for turn in await hub.expireOverdueTurns(now: .now) {
                await dispatcher.publish(startingWith: turn)
            }
        }
    }
}
