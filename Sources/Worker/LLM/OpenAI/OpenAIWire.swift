/// OpenAI's chat-completions wire format (the parts Parley sends and reads).
enum OpenAIWire {
    struct Request: Encodable {
        struct Message: Encodable {
            var role: String
            var content: String
        }

        struct StreamOptions: Encodable {
            var include_usage: Bool
        }

        var model: String
        var messages: [Message]
        var temperature: Double?
        var max_completion_tokens: Int?
        var stream: Bool?
        var stream_options: StreamOptions?
    }

    struct Usage: Decodable {
        var prompt_tokens: Int?
        var completion_tokens: Int?
    }

    /// A non-streaming answer.
    struct Response: Decodable {
        struct Choice: Decodable {
            struct Message: Decodable {
                var content: String?
                var refusal: String?
            }

            var message: Message
            var finish_reason: String?
        }

        var model: String?
        var choices: [Choice]
        var usage: Usage?
    }

    /// One `data:` event of a stream: text in `choices[].delta.content`, the finish
    /// reason on the last choice chunk, and (with `include_usage`) a final chunk with
    /// empty `choices` and the usage.
    struct Chunk: Decodable {
        struct Choice: Decodable {
            struct Delta: Decodable {
                var content: String?
                var refusal: String?
            }

            var delta: Delta?
            var finish_reason: String?
        }

        var model: String?
        var choices: [Choice]?
        var usage: Usage?
    }

    /// `{"error":{"message","type","param","code"}}`.
    struct ErrorBody: Decodable {
        struct Detail: Decodable {
            var message: String?
            var type: String?
            var code: String?
        }

        var error: Detail
    }
}
