import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ParleySupport
import Shared

/// OpenAI's `/v1/chat/completions`, streaming (`stream: true` with
/// `stream_options.include_usage`) and not. Any OpenAI-compatible server works —
/// Ollama, vLLM, llama.cpp, the simulator — by pointing `baseURL` at it.
struct OpenAIChatClient: ChatModel {
    let settings: ProviderSettings
    let transport: LLMTransport

    var provider: String { "openai" }
    var model: String { settings.model }

    func complete(_ prompt: [PromptMessage]) async throws(LLMError) -> ChatCompletion {
        let reply = try await transport.send(request(prompt, stream: false))
        guard reply.status == .ok else { throw Self.error(reply) }
        let decoded: OpenAIWire.Response
        do {
            decoded = try JSONDecoder().decode(OpenAIWire.Response.self, from: Data(buffer: reply.body))
        } catch {
            throw .malformedResponse("not a chat completion: \(error)")
        }
        guard let choice = decoded.choices.first else { throw .malformedResponse("no choices") }
        if let refusal = choice.message.refusal, choice.message.content == nil { throw .blocked(refusal) }
        guard let text = choice.message.content else { throw .malformedResponse("no choices[0].message.content") }
        if choice.finish_reason == "content_filter", text.isEmpty { throw .blocked("the answer was filtered (content_filter)") }
        return ChatCompletion(
            text: text,
            model: decoded.model ?? settings.model,
            usage: TokenUsage(promptTokens: decoded.usage?.prompt_tokens ?? 0, completionTokens: decoded.usage?.completion_tokens ?? 0),
            finishReason: choice.finish_reason
        )
    }

    func stream(_ prompt: [PromptMessage], onText: @escaping @Sendable (String) async -> Void) async throws(LLMError) -> ChatCompletion {
        let state = Locked(StreamState())
        let fallbackModel = settings.model
        let reply = try await transport.stream(request(prompt, stream: true)) { events in
            // The text of one read is one piece; the read that ends the answer streams
            // nothing: the final reply, right behind it, carries its text.
            var piece = ""
            for event in events { piece += try Self.apply(event, to: state) ?? "" }
            guard !piece.isEmpty, !state.value.hasEnded else { return }
            await onText(piece)
        }
        if let reply { throw Self.error(reply) }
        let final = state.value
        guard final.sawDone else { throw .malformedResponse("the stream ended before [DONE]") }
        if final.text.isEmpty, let refusal = final.refusal { throw .blocked(refusal) }
        if final.text.isEmpty, final.finishReason == "content_filter" { throw .blocked("the answer was filtered (content_filter)") }
        return ChatCompletion(text: final.text, model: final.model ?? fallbackModel, usage: final.usage, finishReason: final.finishReason)
    }

    // MARK: Wire

    private struct StreamState {
        var text = ""
        var refusal: String?
        var model: String?
        var usage = TokenUsage()
        var finishReason: String?
        var sawDone = false

        var hasEnded: Bool { sawDone || finishReason != nil }
    }

    /// Folds one event into the state; returns the text it carried.
    private static func apply(_ event: SSEEvent, to state: Locked<StreamState>) throws(LLMError) -> String? {
        if event.data == "[DONE]" {
            state.withLock { $0.sawDone = true }
            return nil
        }
        let chunk: OpenAIWire.Chunk
        do {
            chunk = try JSONDecoder().decode(OpenAIWire.Chunk.self, from: Data(event.data.utf8))
        } catch {
            throw .malformedResponse("an unreadable stream chunk: \(event.data.prefix(120))")
        }
        return state.withLock { state -> String? in
            state.model = state.model ?? chunk.model
            if let usage = chunk.usage {
                state.usage = TokenUsage(promptTokens: usage.prompt_tokens ?? 0, completionTokens: usage.completion_tokens ?? 0)
            }
            guard let choice = chunk.choices?.first else { return nil }
            if let reason = choice.finish_reason { state.finishReason = reason }
            if let refusal = choice.delta?.refusal { state.refusal = (state.refusal ?? "") + refusal }
            guard let piece = choice.delta?.content, !piece.isEmpty else { return nil }
            state.text += piece
            return piece
        }
    }

    private func request(_ prompt: [PromptMessage], stream: Bool) -> HTTPClientRequest {
        let base = settings.baseURL.hasSuffix("/") ? String(settings.baseURL.dropLast()) : settings.baseURL
        var request = HTTPClientRequest(url: "\(base)/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Authorization", value: "Bearer \(settings.apiKey)")
        if stream { request.headers.add(name: "Accept", value: "text/event-stream") }
        let body = OpenAIWire.Request(
            model: settings.model,
            messages: prompt.map { .init(role: $0.role.rawValue, content: $0.content) },
            temperature: settings.temperature,
            max_completion_tokens: settings.maxOutputTokens,
            stream: stream ? true : nil,
            stream_options: stream ? .init(include_usage: true) : nil
        )
        request.body = .bytes(ByteBuffer(bytes: (try? JSONEncoder().encode(body)) ?? Data()))
        return request
    }

    /// Maps an error status and OpenAI's error body to an `LLMError`.
    static func error(_ reply: LLMTransport.Reply) -> LLMError {
        let detail = (try? JSONDecoder().decode(OpenAIWire.ErrorBody.self, from: Data(buffer: reply.body)))?.error
        let message = detail?.message ?? String(buffer: reply.body).prefix(200).description
        let status = Int(reply.status.code)
        switch status {
        case 429 where detail?.code == "insufficient_quota" || detail?.type == "insufficient_quota":
            return .quotaExceeded(message)
        case 429:
            return .rateLimited(retryAfter: RetryHint.from(reply.headers), message: message)
        case 408, 500...599:
            return .unavailable("HTTP \(status): \(message)")
        default:
            return .rejected(status: status, message: message)
        }
    }
}
