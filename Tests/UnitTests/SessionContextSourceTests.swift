import Foundation
import Logging
import ParleyTestSupport
import Testing

@testable import Gateway
@testable import Shared

/// A learning platform in memory: fixed answers, or one error for every read.
struct InMemoryLearningPlatform: LearningPlatform {
    var topics: [Int64: PlatformTopic] = [:]
    var courses: [Int64: String] = [:]
    var learner = LearnerContext()
    var failure: PlatformError?

    func learnerContext(userID: String) async throws(PlatformError) -> LearnerContext {
        if let failure { throw failure }
        return learner
    }

    func courseTitle(userID: String, courseID: Int64) async throws(PlatformError) -> String? {
        if let failure { throw failure }
        guard let title = courses[courseID] else { throw .notFound }
        return title
    }

    func topic(id: Int64) async throws(PlatformError) -> PlatformTopic {
        if let failure { throw failure }
        guard let topic = topics[id] else { throw .notFound }
        return topic
    }

    func completeTopic(_ completion: TopicCompletion, idempotencyKey: String) async throws(PlatformError) {}
}

@Suite("Session context sources")
struct SessionContextSourceTests {
    let logger = Logger(label: "test")
    let platform = InMemoryLearningPlatform(
        topics: [7: PlatformTopic(title: "Frações", description: "somar", promptTemplate: "T {topic_title}", learningObjectives: ["a"])],
        courses: [1: "Matemática"],
        learner: LearnerContext(userLevel: "advanced", completedTopics: ["3"], struggles: ["divisão"])
    )

    func code(_ body: () async throws(ClientError) -> SessionContext) async -> String? {
        do {
            _ = try await body()
            return nil
        } catch {
            return error.code.rawValue
        }
    }

    @Test func thePlatformsAnswersMakeTheContext() async throws {
        let context = try await PlatformContextSource(platform: platform, logger: logger).context(userID: "ana", topicID: 7, courseID: 1)
        #expect(
            context
                == SessionContext(
                    source: .platform,
                    topicTitle: "Frações",
                    topicDescription: "somar",
                    courseTitle: "Matemática",
                    learningObjectives: ["a"],
                    userLevel: "advanced",
                    completedTopics: ["3"],
                    struggles: ["divisão"],
                    promptTemplate: "T {topic_title}"
                )
        )
    }

    @Test func aFreeChatAsksThePlatformNothing() async throws {
        let down = InMemoryLearningPlatform(failure: .unavailable("down"))
        #expect(
            try await PlatformContextSource(platform: down, logger: logger).context(userID: "ana", topicID: nil, courseID: nil) == SessionContext()
        )
    }

    @Test func unknownTopicsAndCoursesAndOutagesHaveTheirCodes() async {
        let source = PlatformContextSource(platform: platform, logger: logger)
        #expect(
            await code { () async throws(ClientError) in try await source.context(userID: "ana", topicID: 8, courseID: nil) } == "topic_not_found"
        )
        #expect(await code { () async throws(ClientError) in try await source.context(userID: "ana", topicID: 7, courseID: 2) } == "course_not_found")
        for failure in [PlatformError.unavailable("503"), .rejected(status: 401, body: "bad key")] {
            let down = PlatformContextSource(platform: InMemoryLearningPlatform(failure: failure), logger: logger)
            #expect(
                await code { () async throws(ClientError) in try await down.context(userID: "ana", topicID: 7, courseID: nil) }
                    == "platform_unavailable"
            )
        }
    }

    @Test func theCatalogGivesTopicCourseAndTheLearnersCompletedTopics() async throws {
        let catalog = InMemoryTopicCatalog(
            [
                CatalogTopic(id: 101, title: "Frações", learningObjectives: ["somar"], courseID: 1, courseTitle: "Matemática"),
                CatalogTopic(id: 102, title: "Livre"),
            ],
            completed: ["ana": ["Números"]]
        )
        let source = CatalogContextSource(catalog: catalog, logger: logger)
        let context = try await source.context(userID: "ana", topicID: 101, courseID: nil)
        #expect(
            context
                == SessionContext(
                    source: .catalog,
                    topicTitle: "Frações",
                    courseTitle: "Matemática",
                    learningObjectives: ["somar"],
                    completedTopics: ["Números"]
                )
        )
        #expect(try await source.context(userID: "bia", topicID: 102, courseID: 1).courseTitle == "Matemática")
        #expect(
            await code { () async throws(ClientError) in try await source.context(userID: "ana", topicID: 999, courseID: nil) } == "topic_not_found"
        )
        #expect(
            await code { () async throws(ClientError) in try await source.context(userID: "ana", topicID: 101, courseID: 9) } == "course_not_found"
        )
    }
}

@Suite("REST errors")
struct RESTErrorTests {

    @Test func anAdministratorActsForNobodyButReadsEveryone() throws {
        let admin = Principal(userID: nil, isAdmin: true)
        #expect(throws: GatewayHTTPError.self) { try admin.actingUser() }
        #expect(admin.mayAccess(user: "ana"))
        let ana = Principal(userID: "ana", isAdmin: false)
        #expect(try ana.actingUser() == "ana")
        #expect(ana.mayAccess(user: "ana") && !ana.mayAccess(user: "bia"))
    }
}
