import Foundation
import Logging
import ParleySupport
import Synchronization
import Testing

@testable import Shared
@testable import Worker

/// A provider that fails its first calls as scripted, then streams a fixed answer.
final class FlakyModel: ChatModel {
    let provider: String
    let model = "flaky-1"
    private let failures: Mutex<[LLMError]>
    /// Text sent before each scripted failure (a stream that breaks mid-way).
    let partialText: String?
    let calls = Atomic<Int>(0)

    init(_ provider: String, failing failures: [LLMError], partialText: String? = nil) {
        self.provider = provider
        self.failures = Mutex(failures)
        self.partialText = partialText
    }

    func complete(_ prompt: [PromptMessage]) async throws(LLMError) -> ChatCompletion {
        try await stream(prompt) { _ in }
    }

    func stream(_ prompt: [PromptMessage], onText: @escaping @Sendable (String) async -> Void) async throws(LLMError) -> ChatCompletion {
        calls.add(1, ordering: .relaxed)
        if let failure = failures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
            if let partialText { await onText(partialText) }
            throw failure
        }
        await onText("resposta de ")
        await onText(provider)
        return ChatCompletion(text: "resposta de \(provider)", model: model, usage: .init(promptTokens: 1, completionTokens: 3))
    }
}

@Suite("Provider chain")
struct ProviderChainTests {
    let sleeps = Locked<[Duration]>([])

    func chain(_ models: [FlakyModel], attempts: Int = 3, breakerFailures: Int = 5) -> (ProviderChain, [CircuitBreaker]) {
        let breakers = models.map { _ in CircuitBreaker(failureThreshold: breakerFailures, cooldown: .seconds(60)) }
        var chain = ProviderChain(
            slots: zip(models, breakers).map { .init(model: $0, breaker: $1) },
            policy: RetryPolicy(maxAttempts: attempts, baseDelay: .milliseconds(100), maxDelay: .seconds(1)),
            streaming: true,
            logger: Logger(label: "test")
        )
        chain.jitter = { 1.0 }
        let sleeps = self.sleeps
        chain.sleep = { duration in sleeps.withLock { $0.append(duration) } }
        return (chain, breakers)
    }

    func run(_ chain: ProviderChain) async throws(LLMError) -> (GenerationResult, [GenerationProgress]) {
        let progress = Locked<[GenerationProgress]>([])
        let result = try await chain.generate([PromptMessage(role: .user, content: "oi")]) { event in
            progress.withLock { $0.append(event) }
        }
        return (result, progress.value)
    }

    @Test func aTransientFailureIsRetriedWithBackoffAndTheServersHint() async throws {
        let gemini = FlakyModel("gemini", failing: [.unavailable("503"), .rateLimited(retryAfter: .seconds(2), message: "slow down")])
        let (chain, _) = chain([gemini])
        let (result, progress) = try await run(chain)
        #expect(result.provider == "gemini")
        #expect(result.attempts == 3)
        #expect(gemini.calls.load(ordering: .relaxed) == 3)
        #expect(sleeps.withLock { $0 } == [.milliseconds(100), .seconds(2)])
        #expect(progress == [.text("resposta de "), .text("gemini")])
    }

    @Test func aFailedProviderFallsBackToTheNext() async throws {
        let gemini = FlakyModel("gemini", failing: Array(repeating: .unavailable("503"), count: 3))
        let openai = FlakyModel("openai", failing: [])
        let (chain, _) = chain([gemini, openai])
        let (result, _) = try await run(chain)
        #expect(result.provider == "openai")
        #expect(result.attempts == 4)
        #expect(result.completion.text == "resposta de openai")
    }

    @Test func errorsARetryCannotFixFallBackAtOnce() async throws {
        let gemini = FlakyModel("gemini", failing: [.rejected(status: 400, message: "bad request")])
        let openai = FlakyModel("openai", failing: [])
        let (chain, _) = chain([gemini, openai])
        let (result, _) = try await run(chain)
        #expect(gemini.calls.load(ordering: .relaxed) == 1)
        #expect(result.provider == "openai")
        #expect(sleeps.withLock { $0 }.isEmpty)
    }

    @Test func aBlockedPromptEndsTheChain() async {
        let gemini = FlakyModel("gemini", failing: [.blocked("SAFETY")])
        let openai = FlakyModel("openai", failing: [])
        let (chain, _) = chain([gemini, openai])
        await #expect(throws: LLMError.blocked("SAFETY")) { try await run(chain) }
        #expect(openai.calls.load(ordering: .relaxed) == 0)
    }

    @Test func aStreamThatBreaksAfterTextIsResetBeforeTheRetry() async throws {
        let gemini = FlakyModel("gemini", failing: [.malformedResponse("cut")], partialText: "meia resp")
        let (chain, _) = chain([gemini])
        let (result, progress) = try await run(chain)
        #expect(progress.first == .text("meia resp"))
        guard progress.count == 4, case .reset = progress[1] else {
            Issue.record("expected text, reset, then the new text: \(progress)")
            return
        }
        #expect(Array(progress[2...]) == [.text("resposta de "), .text("gemini")])
        #expect(result.completion.text == "resposta de gemini")
    }

    @Test func anOpenCircuitSkipsTheProvider() async throws {
        let gemini = FlakyModel("gemini", failing: Array(repeating: .unavailable("503"), count: 2))
        let openai = FlakyModel("openai", failing: [])
        let (chain, breakers) = chain([gemini, openai], attempts: 2, breakerFailures: 2)
        _ = try await run(chain)  // gemini fails twice: its circuit opens
        #expect(!breakers[0].allowsRequest())
        let (result, _) = try await run(chain)
        #expect(result.provider == "openai")
        #expect(gemini.calls.load(ordering: .relaxed) == 2)
    }

    /// A worker's own want of a pooled connection says nothing of the provider: it is
    /// retried, and never opens the provider's circuit.
    @Test func noFreeLocalConnectionIsRetriedAndNeverTripsTheBreaker() async throws {
        let openai = FlakyModel("openai", failing: Array(repeating: .noLocalConnection("pool"), count: 3))
        let (chain, breakers) = chain([openai], attempts: 3, breakerFailures: 2)
        await #expect(throws: LLMError.noLocalConnection("pool")) { try await run(chain) }
        #expect(openai.calls.load(ordering: .relaxed) == 3)
        #expect(breakers[0].current == .closed(failures: 0))
    }

    @Test func whenEveryProviderFailsTheLastErrorIsReported() async {
        let gemini = FlakyModel("gemini", failing: [.quotaExceeded("none left")])
        let openai = FlakyModel("openai", failing: [.rejected(status: 401, message: "bad key")])
        let (chain, _) = chain([gemini, openai])
        await #expect(throws: LLMError.rejected(status: 401, message: "bad key")) { try await run(chain) }
    }
}

@Suite("Delta coalescer")
struct DeltaCoalescerTests {
    @Test func theFirstTextGoesAtOnceThenTextIsGroupedByTimeAndSize() {
        var coalescer = DeltaCoalescer(maxCharacters: 10, maxDelay: .milliseconds(30))
        let start = ContinuousClock.now
        #expect(coalescer.add("Ol", now: start) == "Ol")
        #expect(coalescer.add("á", now: start.advanced(by: .milliseconds(5))) == nil)
        #expect(coalescer.add(" tu", now: start.advanced(by: .milliseconds(10))) == nil)
        #expect(coalescer.add("do", now: start.advanced(by: .milliseconds(31))) == "á tudo")
        #expect(coalescer.add("0123456789", now: start.advanced(by: .milliseconds(32))) == "0123456789")
        #expect(coalescer.add("x", now: start.advanced(by: .milliseconds(33))) == nil)
        #expect(coalescer.flush() == "x")
        #expect(coalescer.flush() == nil)
    }

    @Test func aDiscardForgetsHeldText() {
        var coalescer = DeltaCoalescer(maxCharacters: 100, maxDelay: .seconds(1))
        let start = ContinuousClock.now
        _ = coalescer.add("a", now: start)
        _ = coalescer.add("b", now: start)
        coalescer.discard()
        #expect(coalescer.flush() == nil)
        #expect(coalescer.add("c", now: start) == "c")
    }

    @Test func aFiveHundredTokenReplyCostsFarFewerMessagesThanTokens() {
        var coalescer = DeltaCoalescer()
        var messages = 0
        let start = ContinuousClock.now
        for token in 0..<500 {  // 4 characters a token, one token a millisecond
            if coalescer.add("abcd", now: start.advanced(by: .milliseconds(token))) != nil { messages += 1 }
        }
        if coalescer.flush() != nil { messages += 1 }
        #expect(messages <= 500 * 4 / 64 + 2)
    }

    /// Issue 11: a worker with many streams at once shares a budget of deltas a
    /// second; each stream's interval grows with their number, and shrinks back.
    @Test func manyStreamsAtOnceShareTheWorkersDeltaBudget() {
        let budget = DeltaBudget(perSecond: 10)
        var coalescer = DeltaCoalescer(maxCharacters: 1024, maxDelay: .milliseconds(30))
        coalescer.budget = budget
        for _ in 0..<5 { budget.open() }  // 5 streams, 10 a second: one each 0.5 s
        let start = ContinuousClock.now
        #expect(coalescer.add("a", now: start) == "a")
        #expect(coalescer.add("b", now: start + .milliseconds(100)) == nil)
        #expect(coalescer.add("c", now: start + .milliseconds(510)) == "bc")
        for _ in 0..<5 { budget.close() }  // alone again: the base interval
        #expect(coalescer.add("d", now: start + .milliseconds(545)) == "d")
        #expect(DeltaBudget(perSecond: 0).interval(atLeast: .milliseconds(30)) == .milliseconds(30))
    }

    /// Issue 11: a model that answers at once (70 tokens fed one by one) cost a delta per
    /// 64 characters; by default it is the first piece, and the rest is held (which the
    /// worker drops at the end: the reply carries it, `DeltaStream.finish`).
    @Test func anAnswerThatArrivesAtOnceIsTheFirstPieceAndTheHeldRest() {
        var coalescer = DeltaCoalescer()
        let now = ContinuousClock.now
        let pieces = (0..<70).compactMap { _ in coalescer.add("word ", now: now) } + [coalescer.flush()].compactMap { $0 }
        #expect(pieces.count == 2)
        #expect(pieces.joined() == String(repeating: "word ", count: 70))
    }
}

@Suite("Turn cancellations")
struct TurnCancellationsTests {
    @Test func aRunningTurnIsCancelledOnlyForItsOwnSession() {
        let cancellations = TurnCancellations()
        let turn = UUID()
        let session = UUID()
        let gate = cancellations.begin(turn, session: session)
        cancellations.cancel(turn, session: UUID())
        #expect(!gate.isOpen)
        cancellations.cancel(turn, session: session)
        #expect(gate.isOpen)
    }

    /// Two attempts at one turn on one worker (a copy beside the first): when one
    /// ends, a cancel still reaches the other.
    @Test func aCancelReachesEveryAttemptStillRunning() {
        let cancellations = TurnCancellations()
        let (turn, session) = (UUID(), UUID())
        let first = cancellations.begin(turn, session: session)
        let second = cancellations.begin(turn, session: session)
        cancellations.end(turn, first)
        cancellations.cancel(turn, session: session)
        #expect(second.isOpen)
        #expect(!first.isOpen)
    }

    @Test func aCancelBeforeTheTurnStartsIsRemembered() {
        let cancellations = TurnCancellations()
        let turn = UUID()
        let session = UUID()
        cancellations.cancel(turn, session: session)
        #expect(cancellations.begin(turn, session: session).isOpen)
        #expect(!cancellations.begin(UUID(), session: session).isOpen)
    }
}
