import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ParleySupport
import Shared

/// Google Gemini's `models/{model}:generateContent` and
/// `models/{model}:streamGenerateContent?alt=sse`.
struct GeminiChatClient: ChatModel {
    let settings: ProviderSettings
    let transport: LLMTransport

    var provider: String { "gemini" }
    var model: String { settings.model }

    func complete(_ prompt: [PromptMessage]) async throws(LLMError) -> ChatCompletion {
        let reply = try await transport.send(request(prompt, method: "generateContent"))
        guard reply.status == .ok else { throw Self.error(reply) }
        let response: GeminiWire.Response
        do {
            response = try JSONDecoder().decode(GeminiWire.Response.self, from: Data(buffer: reply.body))
        } catch {
            throw .malformedResponse("not a generateContent response: \(error)")
        }
        var state = StreamState()
        try state.apply(response)
        return try state.completion(fallbackModel: settings.model)
    }

    func stream(_ prompt: [PromptMessage], onText: @escaping @Sendable (String) async -> Void) async throws(LLMError) -> ChatCompletion {
        let state = Locked(StreamState())
        let reply = try await transport.stream(request(prompt, method: "streamGenerateContent", query: "alt=sse")) { events in
            // The text of one read is one piece; the read that ends the answer streams
            // nothing: the final reply, right behind it, carries its text.
            var piece = ""
            for event in events {
                let response: GeminiWire.Response
                do {
                    response = try JSONDecoder().decode(GeminiWire.Response.self, from: Data(event.data.utf8))
                } catch {
                    throw LLMError.malformedResponse("an unreadable stream event: \(event.data.prefix(120))")
                }
                piece += try state.withLock { state throws(LLMError) -> String in try state.apply(response) }
            }
            guard !piece.isEmpty, state.value.finishReason == nil else { return }
            await onText(piece)
        }
        if let reply { throw Self.error(reply) }
        let final = state.value
        guard final.finishReason != nil else { throw .malformedResponse("the stream ended before a finishReason") }
        return try final.completion(fallbackModel: settings.model)
    }

    // MARK: Wire

    private struct StreamState {
        var text = ""
        var model: String?
        var usage = TokenUsage()
        var finishReason: String?

        /// Takes one response (or stream chunk) in; returns its new text.
        @discardableResult
        mutating func apply(_ response: GeminiWire.Response) throws(LLMError) -> String {
            if let error = response.error {
                throw GeminiChatClient.error(status: error.code ?? 500, detail: error, headers: [:])
            }
            if let reason = response.promptFeedback?.blockReason {
                throw .blocked("the prompt was blocked (\(reason))")
            }
            model = model ?? response.modelVersion
            if let usage = response.usageMetadata {
                // Counts from the network: clamped before the sum, so it cannot overflow.
                let counted = { (count: Int?) in min(max(count ?? 0, 0), Int(Int32.max)) }
                self.usage = TokenUsage(
                    promptTokens: counted(usage.promptTokenCount),
                    completionTokens: counted(usage.candidatesTokenCount) + counted(usage.thoughtsTokenCount)
                )
            }
            // Appending only: counting the whole text again for every chunk made a
            // long answer quadratic.
            let piece = response.text
            text += piece
            if let reason = response.candidates?.first?.finishReason { finishReason = reason }
            return piece
        }

        func completion(fallbackModel: String) throws(LLMError) -> ChatCompletion {
            if let reason = finishReason, GeminiWire.blockingFinishReasons.contains(reason), text.isEmpty {
                throw .blocked("the answer was withheld (\(reason))")
            }
            return ChatCompletion(text: text, model: model ?? fallbackModel, usage: usage, finishReason: finishReason)
        }
    }

    private func request(_ prompt: [PromptMessage], method: String, query: String? = nil) -> HTTPClientRequest {
        let base = settings.baseURL.hasSuffix("/") ? String(settings.baseURL.dropLast()) : settings.baseURL
        var url = "\(base)/models/\(settings.model):\(method)"
        if let query { url += "?\(query)" }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "x-goog-api-key", value: settings.apiKey)
        let body = Self.body(prompt, temperature: settings.temperature, maxOutputTokens: settings.maxOutputTokens)
        request.body = .bytes(ByteBuffer(bytes: (try? JSONEncoder().encode(body)) ?? Data()))
        return request
    }

    /// System messages become `systemInstruction`; the others become `contents` with
    /// roles `user` and `model`, consecutive messages of one role merged, starting
    /// with a user turn as Gemini requires.
    static func body(_ prompt: [PromptMessage], temperature: Double?, maxOutputTokens: Int?) -> GeminiWire.Request {
        let system = prompt.filter { $0.role == .system }.map(\.content)
        var contents: [GeminiWire.Content] = []
        for message in prompt where message.role != .system {
            let role = message.role == .assistant ? "model" : "user"
            if contents.last?.role == role {
                contents[contents.count - 1].parts?.append(.init(text: message.content))
            } else {
                contents.append(.init(role: role, parts: [.init(text: message.content)]))
            }
        }
        if contents.first?.role == "model" {
            contents.insert(.init(role: "user", parts: [.init(text: PromptBuilder.openingCue)]), at: 0)
        }
        let config =
            temperature == nil && maxOutputTokens == nil
            ? nil : GeminiWire.GenerationConfig(temperature: temperature, maxOutputTokens: maxOutputTokens)
        return GeminiWire.Request(
            contents: contents,
            systemInstruction: system.isEmpty ? nil : .init(parts: [.init(text: system.joined(separator: "\n\n"))]),
            generationConfig: config
        )
    }

    /// Maps an error status and Google's error body to an `LLMError`.
    static func error(_ reply: LLMTransport.Reply) -> LLMError {
        let detail = (try? JSONDecoder().decode(GeminiWire.ErrorBody.self, from: Data(buffer: reply.body)))?.error
        return error(status: Int(reply.status.code), detail: detail, headers: reply.headers, rawBody: String(buffer: reply.body))
    }

    static func error(status: Int, detail: GeminiWire.ErrorBody.Detail?, headers: HTTPHeaders, rawBody: String = "") -> LLMError {
        let message = [detail?.status, detail?.message].compactMap { $0 }.joined(separator: ": ")
        let text = message.isEmpty ? String(rawBody.prefix(200)) : message
        switch status {
        case 429:
            let hint = detail?.retryDelay.flatMap(RetryHint.protobufDuration) ?? RetryHint.from(headers)
            return .rateLimited(retryAfter: hint, message: text)
        case 408, 500...599:
            return .unavailable("HTTP \(status): \(text)")
        default:
            return .rejected(status: status, message: text)
        }
    }
}
