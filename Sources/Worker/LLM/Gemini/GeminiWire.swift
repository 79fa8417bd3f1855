/// Google's Gemini `generateContent` wire format (the parts Parley sends and reads).
enum GeminiWire {
    struct Part: Codable {
        var text: String?
        /// A part of the model's reasoning ("thinking"), not of the answer.
        var thought: Bool?
    }

    struct Content: Codable {
        var role: String?
        var parts: [Part]?
    }

    struct GenerationConfig: Encodable {
        var temperature: Double?
        var maxOutputTokens: Int?
    }

    struct Request: Encodable {
        var contents: [Content]
        var systemInstruction: Content?
        var generationConfig: GenerationConfig?
    }

    struct UsageMetadata: Decodable {
        var promptTokenCount: Int?
        var candidatesTokenCount: Int?
        var thoughtsTokenCount: Int?
    }

    /// A whole answer, or one event of a stream (`alt=sse`): the same shape.
    struct Response: Decodable {
        struct Candidate: Decodable {
            var content: Content?
            /// `STOP`, `MAX_TOKENS`, `SAFETY`, … — kept as text: Google adds values.
            var finishReason: String?
        }

        struct PromptFeedback: Decodable {
            var blockReason: String?
        }

        var candidates: [Candidate]?
        var promptFeedback: PromptFeedback?
        var usageMetadata: UsageMetadata?
        var modelVersion: String?
        var error: ErrorBody.Detail?

        /// The answer's text in this response (thoughts left out).
        var text: String {
            (candidates?.first?.content?.parts ?? []).filter { $0.thought != true }.compactMap(\.text).joined()
        }
    }

    /// `{"error":{"code","message","status","details":[{"@type":…RetryInfo,"retryDelay":"2s"}]}}`.
    struct ErrorBody: Decodable {
        struct Detail: Decodable {
            struct Item: Decodable {
                var type: String?
                var retryDelay: String?

                enum CodingKeys: String, CodingKey {
                    case type = "@type"
                    case retryDelay
                }
            }

            var code: Int?
            var message: String?
            var status: String?
            var details: [Item]?

            var retryDelay: String? {
                details?.first { $0.type?.hasSuffix("google.rpc.RetryInfo") == true }?.retryDelay
            }
        }

        var error: Detail
    }

    /// Finish reasons that mean the safety filters withheld the answer.
    static let blockingFinishReasons: Set<String> = ["SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY"]
}
