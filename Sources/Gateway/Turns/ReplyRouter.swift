import AMQPClient
import Foundation
import Logging
import ServiceLifecycle
import Shared

/// Consumes this gateway's reply queue and hands each envelope to the pipeline,
/// which fans it out to the session's listeners. Also expires turns whose reply is overdue,
/// and after a reconnect of the queue looks for replies it may have missed
/// (`ReplyRecovery`).
struct ReplyRouter: Service {
    let consumer: AMQPConsumer
    let pipeline: TurnPipeline
    let recovery: ReplyRecovery
    let logger: Logger

    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await expireOverdueTurns() }
            for await delivery in consumer.deliveries.cancelOnGracefulShutdown() {
                do {
                    let reply = try EnvelopeCoding.decode(ReplyEnvelope.self, from: delivery.body)
                    await pipeline.deliver(reply)
                } catch {
                    logger.error("undecodable reply envelope dropped", metadata: ["error": "\(error)", "routing_key": "\(delivery.routingKey)"])
                }
                try? await consumer.ack(delivery)
            }
            group.cancelAll()
        }
    }

    /// Every second: expires overdue turns; after a reconnect (a new connection
    /// generation, past the first) recovers stored replies, at once and again 5 s
    /// later, when the new queue's bindings are surely in place. Recovery (database
    /// reads) runs in child tasks: a slow database must not delay the next second's
    /// `reply_timeout`s.
    private func expireOverdueTurns() async {
        await withDiscardingTaskGroup { group in
            var generation = consumer.connectionGeneration
            var recoverAgainAt: ContinuousClock.Instant?
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .seconds(1))
                } catch {
                    break
                }
                let current = consumer.connectionGeneration
                if current != generation {
                    if generation > 0 {
                        group.addTask { await recovery.recover() }
                        recoverAgainAt = .now.advanced(by: .seconds(5))
                    }
                    generation = current
                } else if let at = recoverAgainAt, at <= .now {
                    recoverAgainAt = nil
                    group.addTask { await recovery.recover() }
                }
                await pipeline.expireOverdueTurns(now: .now)
            }
            group.cancelAll()
        }
    }
}
