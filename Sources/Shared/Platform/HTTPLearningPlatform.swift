import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ParleySupport

/// `LearningPlatform` over HTTP/JSON. Reads retry transient failures (connection
/// errors, time-outs, 5xx, 408, 429) with exponential backoff up to
/// `maxAttempts`; a completion notice is sent once per call (the outbox retries it).
/// Field names are read leniently: platforms differ in details (`title` or `name`, a
/// list of strings or of objects), and a missing field is simply absent.
public struct HTTPLearningPlatform: LearningPlatform {
    private let client: HTTPClient
    private let settings: PlatformSettings
    private let logger: Logger

    public init(client: HTTPClient, settings: PlatformSettings, logger: Logger) {
        self.client = client
        self.settings = settings
        self.logger = logger
    }

    public func learnerContext(userID: String) async throws(PlatformError) -> LearnerContext {
        let object: [String: Any]
        do {
            object = try await getObject("/api/v1/userprogress/\(Self.escape(userID))/context")
        } catch .notFound {
            // A learner the platform has no progress for yet.
            return LearnerContext()
        }
        let completedTitles = LenientJSON.strings(object["completedTopics"])
        return LearnerContext(
            userLevel: LenientJSON.string(object["userLevel"]) ?? LenientJSON.string(object["level"]),
            completedTopics: completedTitles.isEmpty ? LenientJSON.strings(object["completedTopicIds"]) : completedTitles,
            struggles: LenientJSON.strings(object["struggleTopics"] ?? object["struggles"])
        )
    }

    public func courseTitle(userID: String, courseID: Int64) async throws(PlatformError) -> String? {
        let object = try await getObject("/api/v1/userprogress/\(Self.escape(userID))/course/\(courseID)")
        let course = object["course"] as? [String: Any] ?? [:]
        return LenientJSON.string(object["courseTitle"]) ?? LenientJSON.string(object["title"]) ?? LenientJSON.string(object["name"])
            ?? LenientJSON.string(course["title"]) ?? LenientJSON.string(course["name"])
    }

    public func topic(id: Int64) async throws(PlatformError) -> PlatformTopic {
        let object = try await getObject("/api/v1/trainingtopics/\(id)")
        return PlatformTopic(
            title: LenientJSON.string(object["title"]) ?? LenientJSON.string(object["name"]),
            description: LenientJSON.string(object["description"]),
            promptTemplate: LenientJSON.string(object["promptTemplate"]),
            learningObjectives: LenientJSON.strings(object["learningObjectives"])
        )
    }

    public func completeTopic(_ completion: TopicCompletion, idempotencyKey: String) async throws(PlatformError) {
        var request = request("/api/v1/userprogress/complete-topic", method: .POST)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: idempotencyKey)
        request.body = .bytes(ByteBuffer(bytes: completion.jsonBody))
        _ = try await send(request)
    }

    // MARK: HTTP

    private func getObject(_ path: String) async throws(PlatformError) -> [String: Any] {
        let body = try await withRetries(path) { () async throws(PlatformError) -> Data in
            try await send(request(path, method: .GET))
        }
        guard let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            throw .unavailable("\(path) did not answer with a JSON object")
        }
        return object
    }

    private func withRetries(_ path: String, _ body: () async throws(PlatformError) -> Data) async throws(PlatformError) -> Data {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch .unavailable(let why) where attempt < settings.maxAttempts {
                let delay = settings.retryDelay(afterAttempt: attempt)
                logger.warning(
                    "learning platform unavailable; retrying",
                    metadata: ["path": "\(path)", "attempt": "\(attempt)", "retry_in_ms": "\(delay.wholeMilliseconds)", "error": "\(why)"]
                )
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    throw .unavailable("cancelled while waiting to retry: \(why)")
                }
                attempt += 1
            }
        }
    }

    private func request(_ path: String, method: HTTPMethod) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: settings.baseURL + path)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        if let apiKey = settings.apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        return request
    }

    /// One request; the body of a 2xx answer, or the error it amounts to. The time
    /// limit covers the whole exchange, body included (a stalled body is a failure).
    private func send(_ request: HTTPClientRequest) async throws(PlatformError) -> Data {
        let (client, logger, limit) = (self.client, self.logger, settings.requestTimeout)
        let response: (status: Int, body: ByteBuffer)
        do {
            response = try await withTimeout(limit) {
                let head = try await client.execute(request, timeout: .milliseconds(Int64(limit.wholeMilliseconds)), logger: logger)
                return (Int(head.status.code), try await head.body.collect(upTo: 4 << 20))
            }
        } catch is TimeoutError {
            throw .unavailable("\(request.method) \(request.url): no whole answer within \(limit.wholeMilliseconds) ms")
        } catch {
            throw .unavailable("\(request.method) \(request.url): \(error)")
        }
        switch response.status {
        case 200..<300:
            return Data(buffer: response.body)
        case 404:
            throw .notFound
        case 408, 429, 500...:
            throw .unavailable("\(request.method) \(request.url) answered \(response.status)")
        default:
            throw .rejected(status: response.status, body: String(buffer: response.body).prefix(300).description)
        }
    }

    private static func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/."))) ?? segment
    }
}

/// Reads JSON values that may come in several shapes.
enum LenientJSON {
    static func string(_ value: Any?) -> String? {
        switch value {
        case let text as String:
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.isEmpty ? nil : trimmed
        case let number as NSNumber:
            return number.stringValue
        default:
            return nil
        }
    }

    /// A list of strings, numbers or objects with a `title` or `name`; or one string
    /// (one item per line).
    static func strings(_ value: Any?) -> [String] {
        switch value {
        case let items as [Any]:
            return items.compactMap { item in
                if let object = item as? [String: Any] {
                    return string(object["title"]) ?? string(object["name"]) ?? string(object["id"])
                }
                return string(item)
            }
        case let text as String:
            return text.split(whereSeparator: \.isNewline).compactMap { string(String($0)) }
        default:
            return []
        }
    }
}
