import Logging
import ParleySupport
import Shared

/// What the chain reports while an answer is generated.
enum GenerationProgress: Sendable, Equatable {
    case text(String)
    /// The text reported so far is void: the stream broke after some text had been
    /// sent, and the answer is being generated again from the start.
    case reset(reason: String)
    /// Another attempt at this turn (an earlier delivery, elsewhere) may have streamed
    /// text: the client must drop it, even though this attempt has sent nothing yet.
    case voidEarlierAttempt(reason: String)
}

/// A finished generation and how it came about.
struct GenerationResult: Sendable, Equatable {
    var completion: ChatCompletion
    var provider: String
    /// From the start of the attempt that succeeded to its first text.
    var timeToFirstToken: Duration?
    /// Attempts over all providers, the successful one included.
    var attempts: Int
}

/// The providers in order of preference (e.g. Gemini, then OpenAI), each retried by
/// the `RetryPolicy` and skipped while its `CircuitBreaker` is open. A failure that
/// another provider cannot fix (a blocked prompt, a cancellation) ends the chain.
struct ProviderChain: Sendable {
    struct Slot: Sendable {
        let model: any ChatModel
        let breaker: CircuitBreaker
    }

    let slots: [Slot]
    let policy: RetryPolicy
    /// Stream answers (`true`) or ask for them whole.
    let streaming: Bool
    let logger: Logger
    var jitter: @Sendable () -> Double = { Double.random(in: 0...1) }
    var sleep: @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }

    var primary: any ChatModel { slots[0].model }

    /// What one generation has been through so far, across providers.
    private struct Progress {
        var lastError = LLMError.unavailable("no provider configured")
        var attempts = 0
        /// Text of a failed attempt reached the client: the next attempt first resets it.
        let textSent = Locked(false)
    }

    func generate(
        _ prompt: [PromptMessage],
        onProgress: @escaping @Sendable (GenerationProgress) async -> Void
    ) async throws(LLMError) -> GenerationResult {
        var progress = Progress()
        var lastTried: String?
        for slot in slots {
            guard slot.breaker.allowsRequest() else {
                logger.warning("provider skipped: circuit open", metadata: ["provider": "\(slot.model.provider)", "model": "\(slot.model.model)"])
                progress.lastError = .circuitOpen(provider: slot.model.provider)
                continue
            }
            if let lastTried {
                ParleyMetrics.llmFallbacks.increment(by: 1, [("from", lastTried), ("to", slot.model.provider)])
            }
            lastTried = slot.model.provider
            if let result = try await generate(prompt, with: slot, progress: &progress, onProgress: onProgress) { return result }
            guard progress.lastError.allowsFallback else { throw progress.lastError }
        }
        throw progress.lastError
    }

    /// Tries one provider, again as long as the retry policy allows; nil when it
    /// failed for good (`progress.lastError` says how).
    private func generate(
        _ prompt: [PromptMessage],
        with slot: Slot,
        progress: inout Progress,
        onProgress: @escaping @Sendable (GenerationProgress) async -> Void
    ) async throws(LLMError) -> GenerationResult? {
        var metadata: Logger.Metadata = ["provider": "\(slot.model.provider)", "model": "\(slot.model.model)"]
        let labels = [("provider", slot.model.provider), ("model", slot.model.model)]
        let textSent = progress.textSent
        var attempt = 0
        while true {
            attempt += 1
            progress.attempts += 1
            if textSent.withLock({ sent in
                defer { sent = false }
                return sent
            }) {
                await onProgress(.reset(reason: "\(progress.lastError)"))
            }
            let started = ContinuousClock.now
            let firstText = Locked<ContinuousClock.Instant?>(nil)
            do {
                let completion = try await run(slot.model, prompt) { piece in
                    firstText.withLock { $0 = $0 ?? .now }
                    textSent.withLock { $0 = true }
                    await onProgress(.text(piece))
                }
                slot.breaker.recordSuccess()
                record(attemptOf: labels, started: started, firstText: firstText.value, outcome: "ok")
                // A server's own count, which a broken one might send negative.
                ParleyMetrics.llmTokens.increment(by: max(0, completion.usage.promptTokens), labels + [("kind", "prompt")])
                ParleyMetrics.llmTokens.increment(by: max(0, completion.usage.completionTokens), labels + [("kind", "completion")])
                return GenerationResult(
                    completion: completion,
                    provider: slot.model.provider,
                    timeToFirstToken: firstText.value.map { started.duration(to: $0) },
                    attempts: progress.attempts
                )
            } catch {
                if case .cancelled = error { throw error }
                record(attemptOf: labels, started: started, firstText: firstText.value, outcome: "error")
                ParleyMetrics.llmErrors.increment(by: 1, [("provider", slot.model.provider), ("code", error.code.rawValue)])
                progress.lastError = error
                metadata["error"] = "\(error)"
                metadata["attempt"] = "\(attempt)"
                if error.countsAgainstProvider { slot.breaker.recordFailure() }
                guard let delay = policy.delay(after: attempt, failedWith: error, jitter: jitter()) else {
                    logger.warning("provider failed; not retrying it", metadata: metadata)
                    return nil
                }
                logger.warning("provider failed; retrying", metadata: metadata.merging(["delay": "\(delay)"]) { $1 })
                ParleyMetrics.llmRetries.increment(by: 1, labels)
                do {
                    try await sleep(delay)
                } catch {
                    throw .cancelled
                }
            }
        }
    }

    /// One attempt's metrics. Time to first token exists only for a stream: a whole
    /// answer's "first text" is its end.
    private func record(attemptOf labels: [(String, String)], started: ContinuousClock.Instant, firstText: ContinuousClock.Instant?, outcome: String)
    {
        ParleyMetrics.llmRequestDuration.record(started.duration(to: .now), labels + [("outcome", outcome)])
        if streaming, let firstText { ParleyMetrics.llmTimeToFirstToken.record(started.duration(to: firstText), labels) }
    }

    private func run(
        _ model: any ChatModel,
        _ prompt: [PromptMessage],
        onText: @escaping @Sendable (String) async -> Void
    ) async throws(LLMError) -> ChatCompletion {
        if streaming { return try await model.stream(prompt, onText: onText) }
        let completion = try await model.complete(prompt)
        if !completion.text.isEmpty { await onText(completion.text) }
        return completion
    }
}

extension LLMError {
    /// Failures that say the provider is in trouble (and so trip its breaker), as
    /// opposed to failures of this request.
    var countsAgainstProvider: Bool {
        switch self {
        case .unavailable, .rateLimited, .malformedResponse, .stalled, .quotaExceeded: true
        case .rejected, .blocked, .circuitOpen, .cancelled, .noLocalConnection: false
        }
    }
}
