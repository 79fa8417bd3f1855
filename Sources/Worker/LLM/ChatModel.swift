import Foundation
import Shared

/// One message of a prompt.
struct PromptMessage: Sendable, Equatable {
    var role: ChatMessage.Role
    var content: String
}

/// What a model answered, in full.
struct ChatCompletion: Sendable, Equatable {
    var text: String
    var model: String
    var usage: TokenUsage
    var finishReason: String?

    init(text: String, model: String, usage: TokenUsage, finishReason: String? = nil) {
        self.text = text
        self.model = model
        self.usage = usage
        self.finishReason = finishReason
    }
}

/// What can go wrong at the LLM boundary; `code` is what the client sees.
enum LLMError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The provider could not be reached, timed out, or failed on its side (5xx).
    case unavailable(String)
    /// 429 (or Google's RESOURCE_EXHAUSTED): too many requests; `retryAfter` is the
    /// server's hint (`Retry-After`, `RetryInfo.retryDelay`).
    case rateLimited(retryAfter: Duration?, message: String)
    /// The account has no quota left (OpenAI `insufficient_quota`): retrying will not help.
    case quotaExceeded(String)
    /// The provider refused the request (4xx other than 408/429): retrying will not help.
    case rejected(status: Int, message: String)
    /// The provider's safety filters blocked the prompt or the answer.
    case blocked(String)
    /// The provider answered with something that is not a completion (or a stream
    /// that broke off).
    case malformedResponse(String)
    /// The stream stopped sending for longer than the idle timeout.
    case stalled(Duration)
    /// The provider is skipped for now after repeated failures.
    case circuitOpen(provider: String)
    /// This worker had no free connection to the provider in time: its own
    /// congestion, not the provider's failure (it never trips a breaker).
    case noLocalConnection(String)
    /// The turn was cancelled (by the user, or because its deadline passed).
    case cancelled

    var code: ErrorCode {
        switch self {
        case .unavailable, .stalled, .circuitOpen, .noLocalConnection: .llmUnavailable
        case .rateLimited: .llmRateLimited
        case .quotaExceeded: .llmQuotaExceeded
        case .rejected: .llmRejected
        case .blocked: .llmBlocked
        case .malformedResponse: .llmBadResponse
        case .cancelled: .cancelled
        }
    }

    /// Whether another attempt at the same provider may succeed.
    var isRetryable: Bool {
        switch self {
        case .unavailable, .rateLimited, .malformedResponse, .stalled, .noLocalConnection: true
        case .quotaExceeded, .rejected, .blocked, .circuitOpen, .cancelled: false
        }
    }

    /// Whether another provider may succeed where this one failed (a blocked prompt
    /// would be blocked anywhere; everything else is the provider's own trouble).
    var allowsFallback: Bool {
        switch self {
        case .blocked, .cancelled: false
        default: true
        }
    }

    var description: String {
        switch self {
        case .unavailable(let why): "the language model is unavailable: \(why)"
        case .rateLimited(let after, let message):
            "the language model is rate limited\(after.map { " (retry after \($0))" } ?? ""): \(message)"
        case .quotaExceeded(let message): "the language model account has no quota left: \(message)"
        case .rejected(let status, let message): "the language model refused the request (HTTP \(status)): \(message)"
        case .blocked(let why): "the language model's safety filters blocked this message: \(why)"
        case .malformedResponse(let why): "the language model sent an unreadable answer: \(why)"
        case .stalled(let idle): "the language model stopped sending for \(idle)"
        case .circuitOpen(let provider): "\(provider) failed repeatedly and is skipped for a while"
        case .noLocalConnection(let why): "no connection to the language model was free in this worker: \(why)"
        case .cancelled: "the generation was cancelled"
        }
    }

    /// What the client is told: fixed words per kind of failure. The provider's own
    /// text (which may carry its URL, an account name or a request id) is logged only.
    var clientMessage: String {
        switch self {
        case .unavailable, .stalled, .circuitOpen, .noLocalConnection:
            "the language model is unavailable right now; nothing was stored, send the message again"
        case .rateLimited: "the language model is rate limited right now; nothing was stored, send the message again shortly"
        case .quotaExceeded: "the language model account has no quota left; nothing was stored, tell the operator"
        case .rejected(let status, _): "the language model refused the request (HTTP \(status)); nothing was stored"
        case .blocked: "the language model's safety filters blocked this message; nothing was stored"
        case .malformedResponse: "the language model sent an unreadable answer; nothing was stored, send the message again"
        case .cancelled: "the generation was cancelled"
        }
    }
}

/// How to reach one provider.
struct ProviderSettings: Sendable {
    /// Up to and including the API version: `https://api.openai.com/v1`,
    /// `https://generativelanguage.googleapis.com/v1beta`.
    var baseURL: String
    var apiKey: String
    var model: String
    var temperature: Double?
    var maxOutputTokens: Int?
}

/// The LLM boundary: one provider's API. `OpenAIChatClient` and `GeminiChatClient`
/// are the real ones.
protocol ChatModel: Sendable {
    /// The provider's name for logs and stored facts (`openai`, `gemini`).
    var provider: String { get }
    var model: String { get }
    /// The whole answer in one response (the provider's non-streaming endpoint).
    func complete(_ prompt: [PromptMessage]) async throws(LLMError) -> ChatCompletion
    /// The answer as it is generated: `onText` gets each piece as it arrives, in
    /// order; the result holds the whole text, usage and finish reason. Cancelling
    /// the calling task closes the connection to the provider.
    func stream(_ prompt: [PromptMessage], onText: @escaping @Sendable (String) async -> Void) async throws(LLMError) -> ChatCompletion
}
