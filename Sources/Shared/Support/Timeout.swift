/// Thrown by `withTimeout` when the body did not finish in time.
public struct TimeoutError: Error, Sendable {
    public var duration: Duration

    public init(duration: Duration) {
        self.duration = duration
    }
}

/// Runs `body`, cancelling it and throwing `TimeoutError` after `duration`.
public func withTimeout<T: Sendable>(
    _ duration: Duration, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: duration)
            throw TimeoutError(duration: duration)
        }
        defer { group.cancelAll() }
        guard let result = try await group.next() else { throw TimeoutError(duration: duration) }
        return result
    }
}
