import ParleySupport
import ServiceLifecycle
import Shared

/// Where the turns of REST requests run: child tasks of a service, so that a turn
/// outlives the request that started it (its wait may end first) but not the
/// gateway. At shutdown no new turn starts, and the running ones stop following their
/// turns (which stay in the broker: workers still answer and store them).
struct RESTTurnTasks: Service {
    typealias Work = @Sendable () async -> Void

    private let work: AsyncStream<Work>
    private let submissions: AsyncStream<Work>.Continuation
    /// At most this many turns run at once: each holds a listener and a task.
    let maxRunning: Int
    private let running = Locked(0)

    init(maxRunning: Int = 2_000) {
        self.maxRunning = maxRunning
        (work, submissions) = AsyncStream.makeStream(of: Work.self)
    }

    /// Starts `body`; false when the gateway is shutting down or runs its most turns.
    func start(_ body: @escaping Work) -> Bool {
        let admitted = running.withLock { running -> Bool in
            guard running < maxRunning else { return false }
            running += 1
            return true
        }
        guard admitted else { return false }
        let counted: Work = { [running] in
            await body()
            running.withLock { $0 -= 1 }
        }
        if case .enqueued = submissions.yield(counted) { return true }
        running.withLock { $0 -= 1 }
        return false
    }

    func run() async {
        await withDiscardingTaskGroup { group in
            for await body in work.cancelOnGracefulShutdown() {
                group.addTask { await body() }
            }
            submissions.finish()
            group.cancelAll()
        }
    }
}
