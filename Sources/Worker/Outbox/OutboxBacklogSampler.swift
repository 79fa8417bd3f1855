import Logging
import ParleySupport
import ServiceLifecycle
import Shared

/// Samples the completion outbox's backlog into `parley_outbox_backlog` on a timer —
/// in every worker, whether or not it has a learning platform to send to, so that
/// notices piling up for want of a sender are seen too.
struct OutboxBacklogSampler: Service {
    let outbox: any CompletionOutbox
    var interval: Duration = .seconds(5)
    /// Opened when the database schema is current.
    var startAfter = Gate.opened
    let logger: Logger

    func run() async {
        await cancelWhenGracefulShutdown { await startAfter.wait() }
        guard startAfter.isOpen else { return }
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                ParleyMetrics.outboxBacklog.set(try await outbox.backlog())
            } catch {
                logger.debug("cannot sample the outbox backlog", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
