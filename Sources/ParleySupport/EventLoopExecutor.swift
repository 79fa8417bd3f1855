import NIOCore
import NIOPosix

/// Runs Swift concurrency's tasks on NIO's singleton event loops, the threads that do
/// the processes' I/O, instead of on the concurrency pool's own threads.
///
/// Without it every resumption after I/O is a thread hop: an event loop reads a
/// token of a streamed answer, a row from PostgreSQL or a WebSocket frame, wakes a
/// pool thread to run the task that waits for it, and that thread sleeps again. With
/// it the task goes on on the event loop that did the read (NIO keeps it there when
/// it is already on one), so it costs no wake-up and no switch. Measured in scenario
/// B (one worker, 1,000 streamed turns): the worker's CPU a turn fell by a quarter
/// (docs/performance.md). What this asks of the code is what NIO asks of any code
/// on an event loop: no blocking call, except on the threads made for one (the AMQP
/// client's, where every call into rabbitmq-c runs).
///
/// `CONCURRENCY_ON_EVENT_LOOPS=false` keeps the pool (to rule it out when chasing a
/// stall).
public enum EventLoopExecutor {
    public static let variable = "CONCURRENCY_ON_EVENT_LOOPS"

    /// Installs the event loops as the global executor; true when they took over.
    /// Call it once, first thing in `main`, before any task is started.
    @discardableResult
    public static func install() -> Bool {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}
