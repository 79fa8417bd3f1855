import Foundation
import Logging
import ParleySupport
import ServiceLifecycle
import Shared

/// Delivers the completion outbox to the learning platform: claims the oldest due
/// row, posts it once, and marks it delivered — or failed, due again after an
/// exponential backoff (`PLATFORM_RETRY_BASE_MS` doubling up to `PLATFORM_RETRY_MAX_MS`),
/// for as long as it takes. Every worker runs a sender; a claim's lease keeps two
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
    /// limit (the request cannot outlive it), so it is never claimed twice while its
    /// request may still succeed.
    var lease: Duration { settings.requestTimeout * 3 + .seconds(30) }

    func run() async {
        await cancelWhenGracefulShutdown { await startAfter.wait() }
        guard startAfter.isOpen else { return }
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            if await !sendNext() {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pollInterval) }
            }
        }
    }

    /// Claims and sends one due row. Returns false when none was due (or the outbox
    /// cannot be read).
    @discardableResult
    func sendNext() async -> Bool {
        let entry: OutboxEntry?
        do {
            entry = try await outbox.claim(lease: lease)
        } catch {
            logger.warning("cannot read the completion outbox", metadata: ["error": "\(error)"])
            return false
        }
        guard let entry else { return false }
        await send(entry, leaseEnds: ContinuousClock.now.advanced(by: lease))
        return true
    }

    private func send(_ entry: OutboxEntry, leaseEnds: ContinuousClock.Instant) async {
        var logger = self.logger
        logger[metadataKey: "session_id"] = "\(entry.sessionID.lowercased)"
        logger[metadataKey: "outbox_id"] = "\(entry.id)"
        logger[metadataKey: "attempt"] = "\(entry.attempts)"
        guard let completion = entry.completion else {
            // Its session was deleted and the row holds no payload: nothing to tell.
            // Kept, and retried slowly, so that the backlog shows it.
            logger.error("a topic completion's session no longer exists; its notice cannot be built")
            await recordFailure(entry, .rejected(status: 0, body: "the session of this completion no longer exists"), logger: logger)
            return
        }
        do {
            try await platform.completeTopic(completion, idempotencyKey: entry.sessionID.lowercased)
            logger.info("the learning platform took the topic completion")
            ParleyMetrics.outboxAttempts.increment(by: 1, [("outcome", "delivered")])
        } catch .rejected(status: 409, _) {
            // The platform has it already (a repeat after a crash, same Idempotency-Key).
            logger.info("the learning platform already had the topic completion (409)")
            ParleyMetrics.outboxAttempts.increment(by: 1, [("outcome", "duplicate")])
        } catch {
            await recordFailure(entry, error, logger: logger)
            return
        }
        await markDelivered(entry, before: leaseEnds, logger: logger)
    }

    /// A refusal (4xx) will not heal by itself: it is retried at the slow end of the
    /// schedule and logged as an error for an operator to look at.
    private func recordFailure(_ entry: OutboxEntry, _ error: PlatformError, logger: Logger) async {
        let delay: Duration
        ParleyMetrics.outboxAttempts.increment(by: 1, [("outcome", error.isRefusal ? "refused" : "failed")])
        if case .rejected = error {
            delay = settings.retryMaximum
            logger.error("the learning platform refused a topic completion; retrying slowly", metadata: ["error": "\(error)"])
        } else {
            delay = settings.retryDelay(afterAttempt: entry.attempts)
            logger.warning(
                "the learning platform did not take a topic completion; will retry",
                metadata: ["error": "\(error)", "retry_in_ms": "\(delay.wholeMilliseconds)"]
            )
        }
        do {
            try await outbox.markFailed(entry, error: error.description, retryIn: delay)
        } catch {
            logger.warning("could not record the failure; the row is retried when its lease ends", metadata: ["error": "\(error)"])
        }
    }

    /// The platform has it: recording that must survive a brief database hiccup, or
    /// the row would be sent again when its lease ends. Tried while the lease lasts.
    private func markDelivered(_ entry: OutboxEntry, before leaseEnds: ContinuousClock.Instant, logger: Logger) async {
        var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        while true {
            do {
                try await outbox.markDelivered(entry)
                return
            } catch {
                let pause = backoff.next()
                guard ContinuousClock.now.advanced(by: pause) < leaseEnds else {
                    logger.error(
                        "a delivered completion stays marked undelivered; the platform will receive it again (same Idempotency-Key)",
                        metadata: ["error": "\(error)"]
                    )
                    return
                }
                logger.warning("could not mark a completion delivered; trying again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: pause)
            }
        }
    }
}

extension PlatformError {
    /// The platform said no (4xx): trying again will not help by itself.
    var isRefusal: Bool {
        if case .rejected = self { return true }
        return false
    }
}
