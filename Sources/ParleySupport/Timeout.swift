import Foundation
import Synchronization

/// Thrown by `withTimeout` when the body did not finish in time.
public struct TimeoutError: Error, Sendable {
    public var duration: Duration

    public init(duration: Duration) {
        self.duration = duration
    }
}

/// Runs `body`, cancelling it and throwing `TimeoutError` after `duration`.
///
/// The caller is released at the time limit even when `body` ignores cancellation
/// (seen: a PostgresNIO query while the server shuts down never returned, and a task
/// group, which waits for all its children, hung its caller for good — a worker's turn
/// and a gateway's socket with it). So `body` runs in a task of its own, which is
/// cancelled and left to finish by itself; nothing waits for it. One of the three
/// places where Parley gives up structured concurrency (docs/decisions.md,
/// "Structured concurrency, and its three exceptions"), and only for work that is
/// already cancelled.
public func withTimeout<T: Sendable>(
    _ duration: Duration,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = TimeoutRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            race.start(continuation, duration: duration, body)
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

/// The first of body, timer and cancellation resumes the caller, once.
private final class TimeoutRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
        var done = false
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>, duration: Duration, _ body: @escaping @Sendable () async throws -> T) {
        let cancelledAlready = state.withLock { state -> Bool in
            if state.done { return true }
            state.continuation = continuation
            return false
        }
        if cancelledAlready {
            continuation.resume(throwing: CancellationError())
            return
        }
        let work = Task {
            do {
                self.finish(.success(try await body()))
            } catch {
                self.finish(.failure(error))
            }
        }
        let timer = Task {
            try? await Task.sleep(for: duration)
            if !Task.isCancelled { self.finish(.failure(TimeoutError(duration: duration))) }
        }
        let finishedAlready = state.withLock { state -> Bool in
            state.work = work
            state.timer = timer
            return state.done
        }
        if finishedAlready {
            work.cancel()
            timer.cancel()
        }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, work, timer) = state.withLock { state -> (CheckedContinuation<T, any Error>?, Task<Void, Never>?, Task<Void, Never>?) in
            guard !state.done else { return (nil, nil, nil) }
            state.done = true
            defer { state.continuation = nil }
            return (state.continuation, state.work, state.timer)
        }
        work?.cancel()
        timer?.cancel()
        continuation?.resume(with: result)
    }
}
