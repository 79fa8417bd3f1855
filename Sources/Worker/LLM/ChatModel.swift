import Shared

/// One message of a prompt.
struct PromptMessage: Sendable, Equatable {
    var role: ChatMessage.Role
    var content: String
}

/// What a model answered.
struct ChatCompletion: Sendable, Equatable {
    var text: String
    var model: String
    var usage: TokenUsage
}

/// What can go wrong at the LLM boundary; `code` is what the client sees.
enum LLMError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The provider could not be reached, timed out or failed on its side (5xx, 429).
    case unavailable(String)
    /// The provider refused the request (4xx other than 408/429): retrying will not help.
    case rejected(status: Int, message: String)
    /// The provider answered with something that is not a completion.
    case malformedResponse(String)

    var code: String {
        switch self {
        case .unavailable: "llm_unavailable"
        case .rejected: "llm_rejected"
        case .malformedResponse: "llm_bad_response"
        }
    }

    var description: String {
        switch self {
        case .unavailable(let why): "the language model is unavailable: \(why)"
        case .rejected(let status, let message): "the language model refused the request (HTTP \(status)): \(message)"
        case .malformedResponse(let why): "the language model sent an unreadable answer: \(why)"
        }
    }
}

/// The LLM boundary. `OpenAIChatClient` is the real one.
protocol ChatModel: Sendable {
    func complete(_ prompt: [PromptMessage]) async throws(LLMError) -> ChatCompletion
}
