/// The subset of OpenAI's chat-completions wire format the simulator reads and writes.
enum OpenAIWire {
    struct Request: Decodable, Sendable {
        struct Message: Decodable, Sendable {
            var role: String
            var content: String?
        }

        var model: String
        var messages: [Message]
        var stream: Bool?
    }

    struct Response: Encodable, Sendable {
        struct Choice: Encodable, Sendable {
            struct Message: Encodable, Sendable {
                var role = "assistant"
                var content: String
            }

            var index = 0
            var message: Message
            var finish_reason = "stop"
        }

        struct Usage: Encodable, Sendable {
            var prompt_tokens: Int
            var completion_tokens: Int
            var total_tokens: Int
        }

        var id: String
        var object = "chat.completion"
        var created: Int
        var model: String
        var choices: [Choice]
        var usage: Usage
    }

    struct ErrorBody: Encodable, Sendable {
        struct Detail: Encodable, Sendable {
            var message: String
            var type: String
            var param: String? = nil
            var code: String?
        }

        var error: Detail
    }

    /// A rough token count (about four characters a token), as the real APIs report.
    static func tokens(in text: String) -> Int {
        max(1, (text.count + 3) / 4)
    }
}
