/// What a tutor prompt may mention about the learner and the topic — the context a
/// session was started with, stored with it (`session_contexts`). Every field is
/// optional: a missing value renders as a neutral phrase, never a failure.
public struct SessionContext: Sendable, Equatable {
    /// Where the context came from.
    public enum Source: String, Sendable {
        /// The upstream learning platform (`PLATFORM_API_URL`).
        case platform
        /// The local topic catalog (`TOPICS_FILE`).
        case catalog
        /// A free chat: no topic.
        case none
    }

    public var source: Source
    public var topicTitle: String?
    public var topicDescription: String?
    public var courseTitle: String?
    public var learningObjectives: [String]
    /// `beginner`, `intermediate`, `advanced` (or already Portuguese).
    public var userLevel: String?
    public var completedTopics: [String]
    public var struggles: [String]
    /// The topic's own prompt template; nil means the default tutor prompt.
    public var promptTemplate: String?

    public init(
        source: Source = .none,
        topicTitle: String? = nil,
        topicDescription: String? = nil,
        courseTitle: String? = nil,
        learningObjectives: [String] = [],
        userLevel: String? = nil,
        completedTopics: [String] = [],
        struggles: [String] = [],
        promptTemplate: String? = nil
    ) {
        self.source = source
        self.topicTitle = topicTitle
        self.topicDescription = topicDescription
        self.courseTitle = courseTitle
        self.learningObjectives = learningObjectives
        self.userLevel = userLevel
        self.completedTopics = completedTopics
        self.struggles = struggles
        self.promptTemplate = promptTemplate
    }
}
