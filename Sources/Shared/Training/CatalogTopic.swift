import Foundation

/// A topic of the local catalog (`TOPICS_FILE`), used when no learning platform is
/// configured.
public struct CatalogTopic: Sendable, Equatable, Decodable {
    public var id: Int64
    public var title: String
    public var description: String?
    public var learningObjectives: [String]
    public var promptTemplate: String?
    public var courseID: Int64?
    public var courseTitle: String?

    public init(
        id: Int64,
        title: String,
        description: String? = nil,
        learningObjectives: [String] = [],
        promptTemplate: String? = nil,
        courseID: Int64? = nil,
        courseTitle: String? = nil
    ) {
        self.id = id
        self.title = title
        self.description = description
        self.learningObjectives = learningObjectives
        self.promptTemplate = promptTemplate
        self.courseID = courseID
        self.courseTitle = courseTitle
    }

    enum CodingKeys: String, CodingKey {
        case id, title, description
        case learningObjectives = "learning_objectives"
        case promptTemplate = "prompt_template"
        case courseID = "course_id"
        case courseTitle = "course_title"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(Int64.self, forKey: .id)
        title = try container.decode(String.self, forKey: .title)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        learningObjectives = try container.decodeIfPresent([String].self, forKey: .learningObjectives) ?? []
        promptTemplate = try container.decodeIfPresent(String.self, forKey: .promptTemplate)
        courseID = try container.decodeIfPresent(Int64.self, forKey: .courseID)
        courseTitle = try container.decodeIfPresent(String.self, forKey: .courseTitle)
    }
}

/// The catalog file: `{"courses": [{"id", "title"}], "topics": [{"id", "title",
/// "description", "learning_objectives", "prompt_template", "course_id"}]}`. A topic's
/// `course_title` comes from its course.
public enum TopicCatalogFile {
    private struct File: Decodable {
        struct Course: Decodable {
            var id: Int64
            var title: String
        }

        var courses: [Course]?
        var topics: [CatalogTopic]
    }

    /// Reads and checks the catalog; every problem names `TOPICS_FILE`.
    public static func load(path: String) throws(ConfigurationError) -> [CatalogTopic] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(variable: "TOPICS_FILE", problem: "names \"\(path)\", which cannot be read")
        }
        return try parse(data, path: path)
    }

    public static func parse(_ data: Data, path: String = "the catalog") throws(ConfigurationError) -> [CatalogTopic] {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw ConfigurationError(variable: "TOPICS_FILE", problem: "(\(path)) is not a valid topic catalog: \(describe(error))")
        }
        let courses = Dictionary((file.courses ?? []).map { ($0.id, $0.title) }, uniquingKeysWith: { first, _ in first })
        var seen = Set<Int64>()
        var topics: [CatalogTopic] = []
        for var topic in file.topics {
            guard seen.insert(topic.id).inserted else {
                throw ConfigurationError(variable: "TOPICS_FILE", problem: "(\(path)) lists topic \(topic.id) twice")
            }
            guard !topic.title.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ConfigurationError(variable: "TOPICS_FILE", problem: "(\(path)) topic \(topic.id) has an empty title")
            }
            if let courseID = topic.courseID {
                guard let title = courses[courseID] else {
                    throw ConfigurationError(
                        variable: "TOPICS_FILE",
                        problem: "(\(path)) topic \(topic.id) names course \(courseID), which is not in \"courses\""
                    )
                }
                topic.courseTitle = title
            }
            topics.append(topic)
        }
        return topics
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            "\"\(key.stringValue)\" is missing at \(path(context))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "\(path(context)) has the wrong type"
        case DecodingError.dataCorrupted(let context):
            context.codingPath.isEmpty ? "not valid JSON" : "\(path(context)) is malformed"
        default:
            "\(error)"
        }
    }

    private static func path(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return path.isEmpty ? "the top level" : path
    }
}
