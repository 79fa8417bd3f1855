/// When to try a provider again: exponential backoff with jitter, honouring the
/// server's hint, never for errors a retry cannot fix. Pure: the caller supplies the
/// random number and does the waiting.
struct RetryPolicy: Sendable, Equatable {
    /// Attempts at one provider, the first included.
    var maxAttempts = 3
    var baseDelay: Duration = .milliseconds(500)
    var maxDelay: Duration = .seconds(8)
    /// A server asking for a longer pause than this is not waited for: the chain
    /// moves on to the fallback provider instead.
    var longestHintToWaitFor: Duration = .seconds(20)

    /// The pause before the attempt after `attempt` (1-based) failed with `error`,
    /// or nil to give up on this provider. `jitter` is uniform in 0...1.
    func delay(after attempt: Int, failedWith error: LLMError, jitter: Double) -> Duration? {
        guard error.isRetryable, attempt < maxAttempts else { return nil }
        let exponential = min(maxDelay, baseDelay * Int(1 << min(attempt - 1, 16)))
        // "Equal jitter": half fixed, half random, so retries of many turns spread out
        // but never collapse to zero.
        let jittered = exponential * (0.5 + 0.5 * min(max(jitter, 0), 1))
        if case .rateLimited(let hint?, _) = error {
            guard hint <= longestHintToWaitFor else { return nil }
            return max(hint, jittered)
        }
        return jittered
    }
}
