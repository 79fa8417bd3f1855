import Shared
import Synchronization

/// `TopicCatalog` in memory, for unit tests.
public final class InMemoryTopicCatalog: TopicCatalog {
    private let topics: [Int64: CatalogTopic]
    private let completed: Mutex<[String: [String]]>

    public init(_ topics: [CatalogTopic], completed: [String: [String]] = [:]) {
        self.topics = Dictionary(topics.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.completed = Mutex(completed)
    }

    public func topic(id: Int64) async throws(StoreError) -> CatalogTopic? { topics[id] }

    public func courseTitle(id: Int64) async throws(StoreError) -> String? {
        topics.values.sorted { $0.id < $1.id }.first { $0.courseID == id }?.courseTitle
    }

    public func topics(limit: Int) async throws(StoreError) -> [CatalogTopic] {
        Array(topics.values.sorted { ($0.courseID ?? .max, $0.id) < ($1.courseID ?? .max, $1.id) }.prefix(limit))
    }

    public func completedTopicTitles(userID: String) async throws(StoreError) -> [String] {
        completed.withLock { $0[userID] ?? [] }
    }
}
