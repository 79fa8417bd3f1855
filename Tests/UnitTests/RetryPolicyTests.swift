import Testing

@testable import Worker

@Suite("Retry policy")
struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(100), maxDelay: .milliseconds(300), longestHintToWaitFor: .seconds(5))

    @Test(arguments: [
        (1, 0.0, Duration.milliseconds(50)), (1, 1.0, .milliseconds(100)),
        (2, 0.0, .milliseconds(100)), (2, 1.0, .milliseconds(200)),
        (3, 1.0, .milliseconds(300)),  // capped at maxDelay
    ])
    func backoffGrowsWithJitterAndACap(attempt: Int, jitter: Double, expected: Duration) {
        #expect(policy.delay(after: attempt, failedWith: .unavailable("503"), jitter: jitter) == expected)
    }

    @Test func theLastAttemptIsNotRetried() {
        #expect(policy.delay(after: 4, failedWith: .unavailable("503"), jitter: 0.5) == nil)
    }

    @Test(arguments: [
        LLMError.rejected(status: 400, message: "bad"), .quotaExceeded("no money"), .blocked("safety"), .circuitOpen(provider: "x"),
    ])
    func errorsARetryCannotFixAreNotRetried(error: LLMError) {
        #expect(policy.delay(after: 1, failedWith: error, jitter: 0.5) == nil)
    }

    @Test(arguments: [LLMError.unavailable("x"), .malformedResponse("x"), .stalled(.seconds(1)), .rateLimited(retryAfter: nil, message: "x")])
    func transientErrorsAreRetried(error: LLMError) {
        #expect(policy.delay(after: 1, failedWith: error, jitter: 0) != nil)
    }

    @Test func theServersHintIsHonoured() {
        #expect(policy.delay(after: 1, failedWith: .rateLimited(retryAfter: .seconds(2), message: ""), jitter: 1) == .seconds(2))
        // A hint shorter than the backoff does not shorten it.
        #expect(policy.delay(after: 2, failedWith: .rateLimited(retryAfter: .milliseconds(10), message: ""), jitter: 1) == .milliseconds(200))
        // A hint longer than worth waiting gives up on the provider (the fallback takes over).
        #expect(policy.delay(after: 1, failedWith: .rateLimited(retryAfter: .seconds(60), message: ""), jitter: 1) == nil)
    }
}

@Suite("Circuit breaker")
struct CircuitBreakerTests {
    @Test func opensAfterRepeatedFailuresAndProbesAfterTheCooldown() {
        let breaker = CircuitBreaker(failureThreshold: 3, cooldown: .seconds(10))
        let start = ContinuousClock.now
        breaker.recordFailure(now: start)
        breaker.recordFailure(now: start)
        #expect(breaker.allowsRequest(now: start))
        breaker.recordFailure(now: start)
        #expect(!breaker.allowsRequest(now: start.advanced(by: .seconds(9))))
        #expect(breaker.allowsRequest(now: start.advanced(by: .seconds(10))))  // the one trial
        #expect(!breaker.allowsRequest(now: start.advanced(by: .seconds(10))))  // only one
        breaker.recordFailure(now: start.advanced(by: .seconds(11)))
        #expect(!breaker.allowsRequest(now: start.advanced(by: .seconds(20))))
        #expect(breaker.allowsRequest(now: start.advanced(by: .seconds(21))))
        breaker.recordSuccess()
        #expect(breaker.current == .closed(failures: 0))
    }

    @Test func aSuccessResetsTheCount() {
        let breaker = CircuitBreaker(failureThreshold: 2, cooldown: .seconds(10))
        breaker.recordFailure()
        breaker.recordSuccess()
        breaker.recordFailure()
        #expect(breaker.allowsRequest())
    }
}
