import Foundation
import Logging
import ServiceLifecycle
import Shared

/// Delivers the completion outbox to the learning platform: claims the rows that are
/// due, posts each once, and marks it delivered — or failed, due again after an
/// exponential backoff (`PLATFORM_RETRY_BASE_MS` doubling up to `PLATFORM_RETRY_MAX_MS`),
/// for as long as it takes. Every worker runs a sender; the claim's lease keeps two
/// senders from posting the same row, and a row survives any restart.
struct CompletionSender: Service {
    let outbox: any CompletionOutbox
    let platform: any LearningPlatform
    let settings: PlatformSettings
    var pollInterval: Duration = .seconds(1)
    /// Opened when the database schema is current.
    var startAfter = Gate.opened
    let logger: Logger

    /// How long a claimed row is left to this sender: well beyond one request's time
    /// limit, so it is never claimed twice while its request may still succeed.
    var lease: Duration { settings.requestTimeout * 3 + .seconds(30) }

    func run() async {
        await cancelWhenGracefulShutdown { await startAfter.wait() }
        guard startAfter.isOpen else { return }
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            if await sendDue() == 0 {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pollInterval) }
            }
        }
    }

    /// One round: claims the rows that are due and sends them. Returns how many it claimed.
    @discardableResult
    func sendDue() async -> Int {
        let entries: [OutboxEntry]
        do {
            entries = try await outbox.claim(limit: 20, lease: lease)
        } catch {
            logger.warning("cannot read the completion outbox", metadata: ["error": "\(error)"])
            return 0
        }
        for entry in entries {
            await send(entry)
        }
        return entries.count
    }

    private func send(_ entry: OutboxEntry) async {
        var logger = self.logger
        logger[metadataKey: "session_id"] = "\(entry.sessionID.lowercased)"
        logger[metadataKey: "outbox_id"] = "\(entry.id)"
        logger[metadataKey: "attempt"] = "\(entry.attempts)"
        do {
            try await platform.completeTopic(payload: entry.payload, idempotencyKey: entry.sessionID.lowercased)
        } catch {
            let delay = settings.retryDelay(afterAttempt: entry.attempts)
            logger.warning(
                "the learning platform did not take a completion; will retry",
                metadata: ["error": "\(error)", "retry_in_ms": "\(delay.wholeMilliseconds)"]
            )
            do {
                try await outbox.markFailed(entry.id, error: error.description, retryIn: delay)
            } catch {
                logger.warning("could not record the failure; the row is retried when its lease ends", metadata: ["error": "\(error)"])
            }
            return
        }
        logger.info("the learning platform took the topic completion")
        // The platform has it: recording that must not be lost to a brief outage, or
        // the row would be sent again when its lease ends.
        var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        for attempt in 1...10 {
            do {
                try await outbox.markDelivered(entry.id)
                return
            } catch {
                logger.warning("could not mark a completion delivered", metadata: ["error": "\(error)", "try": "\(attempt)"])
                try? await Task.sleep(for: backoff.next())
            }
        }
        logger.error("a delivered completion stays marked undelivered; the platform may receive it again (same Idempotency-Key)")
    }
}
