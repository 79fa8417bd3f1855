import Foundation

/// The learner's standing, from `GET /api/v1/userprogress/{userId}/context`.
public struct LearnerContext: Sendable, Equatable {
    public var userLevel: String?
    /// Titles when the platform sends them, else the topic ids as text.
    public var completedTopics: [String]
    public var struggles: [String]

    public init(userLevel: String? = nil, completedTopics: [String] = [], struggles: [String] = []) {
        self.userLevel = userLevel
        self.completedTopics = completedTopics
        self.struggles = struggles
    }
}

/// A training topic, from `GET /api/v1/trainingtopics/{topicId}`.
public struct PlatformTopic: Sendable, Equatable {
    public var title: String?
    public var description: String?
    public var promptTemplate: String?
    public var learningObjectives: [String]

    public init(title: String? = nil, description: String? = nil, promptTemplate: String? = nil, learningObjectives: [String] = []) {
        self.title = title
        self.description = description
        self.promptTemplate = promptTemplate
        self.learningObjectives = learningObjectives
    }
}

/// What can go wrong at the learning-platform boundary.
public enum PlatformError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The platform answered 404 for the thing asked for.
    case notFound
    /// The platform refused the request for good (another 4xx): retrying will not help.
    case rejected(status: Int, body: String)
    /// No usable answer (connection failed, timed out, 5xx, 429, unreadable body).
    case unavailable(String)

    public var description: String {
        switch self {
        case .notFound: "the platform does not know it (404)"
        case .rejected(let status, let body): "the platform refused the request (\(status)): \(body)"
        case .unavailable(let why): "the platform is unavailable: \(why)"
        }
    }
}

/// The upstream learning platform (docs/decisions.md, "Training sessions: where the
/// context comes from" and "The completion outbox"). `HTTPLearningPlatform` is the real one.
public protocol LearningPlatform: Sendable {
    func learnerContext(userID: String) async throws(PlatformError) -> LearnerContext
    /// The course's title as the learner's progress in it names it.
    func courseTitle(userID: String, courseID: Int64) async throws(PlatformError) -> String?
    func topic(id: Int64) async throws(PlatformError) -> PlatformTopic
    /// `POST /api/v1/userprogress/complete-topic`, once (the outbox retries).
    /// `idempotencyKey` lets the platform drop a repeat.
    func completeTopic(_ completion: TopicCompletion, idempotencyKey: String) async throws(PlatformError)
}
