import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Shared

/// OpenAI's `/v1/chat/completions` (also Ollama, vLLM, llama.cpp and the simulator:
/// anything that speaks the protocol at `baseURL`).
struct OpenAIChatClient: ChatModel {
    struct Settings: Sendable {
        /// Up to and including `/v1`, e.g. `https://api.openai.com/v1`.
        var baseURL: String
        var apiKey: String
        var model: String
        var timeout: Duration
    }

    let settings: Settings
    let httpClient: HTTPClient
    let logger: Logger

    func complete(_ prompt: [PromptMessage]) async throws(LLMError) -> ChatCompletion {
        let url = settings.baseURL.hasSuffix("/") ? "\(settings.baseURL)chat/completions" : "\(settings.baseURL)/chat/completions"
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Authorization", value: "Bearer \(settings.apiKey)")
        let body = WireRequest(model: settings.model, messages: prompt.map { .init(role: $0.role.rawValue, content: $0.content) })
        request.body = .bytes(ByteBuffer(bytes: (try? JSONEncoder().encode(body)) ?? Data()))

        let status: HTTPResponseStatus
        let bytes: ByteBuffer
        do {
            // One limit for the whole exchange: AsyncHTTPClient's own deadline ends
            // when the headers arrive, and a stalled body would hang the turn.
            let (client, prepared, timeout) = (httpClient, request, settings.timeout)
            (status, bytes) = try await withTimeout(timeout) {
                let response = try await client.execute(prepared, timeout: .init(timeout))
                return (response.status, try await response.body.collect(upTo: 4 * 1024 * 1024))
            }
        } catch is TimeoutError {
            throw .unavailable("no complete answer from \(url) within \(settings.timeout)")
        } catch {
            throw .unavailable("request to \(url) failed: \(error)")
        }
        guard status == .ok else {
            let message = (try? JSONDecoder().decode(WireError.self, from: Data(buffer: bytes)))?.error.message
                ?? String(buffer: bytes).prefix(200).description
            switch status.code {
            case 408, 429, 500...599: throw .unavailable("HTTP \(status.code): \(message)")
            default: throw .rejected(status: Int(status.code), message: message)
            }
        }
        let decoded: WireResponse
        do {
            decoded = try JSONDecoder().decode(WireResponse.self, from: Data(buffer: bytes))
        } catch {
            throw .malformedResponse("\(error)")
        }
        guard let text = decoded.choices.first?.message.content else {
            throw .malformedResponse("no choices[0].message.content")
        }
        return ChatCompletion(
            text: text, model: decoded.model ?? settings.model,
            usage: TokenUsage(promptTokens: decoded.usage?.prompt_tokens ?? 0, completionTokens: decoded.usage?.completion_tokens ?? 0)
        )
    }

    private struct WireRequest: Encodable {
        struct Message: Encodable {
            var role: String
            var content: String
        }

        var model: String
        var messages: [Message]
    }

    private struct WireResponse: Decodable {
        struct Choice: Decodable {
            struct Message: Decodable {
                var content: String?
            }

            var message: Message
        }

        struct Usage: Decodable {
            var prompt_tokens: Int?
            var completion_tokens: Int?
        }

        var model: String?
        var choices: [Choice]
        var usage: Usage?
    }

    private struct WireError: Decodable {
        struct Detail: Decodable {
            var message: String
        }

        var error: Detail
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .nanoseconds(Int64(duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
