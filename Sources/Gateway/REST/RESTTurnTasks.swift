import ServiceLifecycle

/// Where the turns of REST requests run: child tasks of a service, so that a turn
/// outlives the request that started it (its wait may end first) but not the
/// gateway. At shutdown no new turn starts, and the running ones stop following their
/// turns (which stay in the broker: workers still answer and store them).
struct RESTTurnTasks: Service {
    typealias Work = @Sendable () async -> Void

    private let work: AsyncStream<Work>
    private let submissions: AsyncStream<Work>.Continuation

    init() {
        (work, submissions) = AsyncStream.makeStream(of: Work.self)
    }

    /// Starts `body`; false when the gateway is shutting down.
    func start(_ body: @escaping Work) -> Bool {
        if case .enqueued = submissions.yield(body) { return true }
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
