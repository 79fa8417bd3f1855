import Dispatch
import Foundation
import ParleySupport
import Testing

@testable import Shared

/// Waits until released, whatever cancellation says (like a database call that
/// ignores it while the server shuts down).
final class Uncancellable: Sendable {
    private let released = Locked(false)
    private let waiters = Locked<[CheckedContinuation<Void, Never>]>([])

    var isReleased: Bool { released.value }

    func wait() async {
        await withCheckedContinuation { continuation in
            let now = released.withLock { released -> Bool in
                if released { return true }
                waiters.withLock { $0.append(continuation) }
                return false
            }
            if now { continuation.resume() }
        }
    }

    func release() {
        released.withLock { $0 = true }
        waiters.withLock { waiters in
            for waiter in waiters { waiter.resume() }
            waiters = []
        }
    }
}

@Suite("Time limits")
struct TimeoutTests {
    @Test func theTimeLimitReleasesTheCallerEvenWhenTheBodyIgnoresCancellation() async throws {
        let stuck = Uncancellable()
        // A safety net: before the fix the caller waited for the body, so release it
        // after a while and see who came first.
        DispatchQueue.global().asyncAfter(deadline: .now() + 5) { stuck.release() }
        do {
            try await withTimeout(.milliseconds(100)) { await stuck.wait() }
            Issue.record("the body cannot have finished")
        } catch is TimeoutError {
            #expect(!stuck.isReleased, "the caller waited for the body")
        }
        stuck.release()
    }

    @Test func aBodyThatFinishesInTimeGivesItsResultAndErrorsPassThrough() async throws {
        #expect(try await withTimeout(.seconds(5)) { 42 } == 42)
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await withTimeout(.seconds(5)) { throw Refused() } }
    }

    @Test func cancellingTheCallerEndsTheWaitAtOnce() async throws {
        let stuck = Uncancellable()
        let waiting = Task { try await withTimeout(.seconds(30)) { await stuck.wait() } }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        stuck.release()
    }
}
