import AsyncHTTPClient
import Foundation
import Logging
import PostgresNIO
import Testing

@testable import Shared
@testable import Worker

/// Topic sessions, the completion outbox and the learning platform client, against
/// the real PostgreSQL and a local fake platform.
@Suite("Training sessions (real database, fake platform)")
struct TrainingIntegrationTests {
    let logger = TestEnvironment.logger

    let fromPlatform = SessionContext(source: .platform, topicTitle: "Equações")

    func completion(of session: UUID) -> CompletedTurn {
        var turn = CompletedTurn(
            sessionID: session,
            turnID: UUID(),
            userContent: "eu domino",
            replyContent: "Parabéns!",
            rawReply: "Parabéns! {TOPIC_COMPLETED}",
            model: "m",
            usage: TokenUsage(),
            latencyMilliseconds: 1
        )
        turn.completesSession = true
        return turn
    }

    @Test func aSessionKeepsTheContextItStartedWith() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: logger)
            let store = PostgresConversationStore(client: client, logger: logger)
            let context = SessionContext(
                source: .platform,
                topicTitle: "Frações",
                topicDescription: "somar",
                courseTitle: "Matemática",
                learningObjectives: ["a", "b"],
                userLevel: "advanced",
                completedTopics: ["Números"],
                struggles: ["divisão"],
                promptTemplate: "Ensine {topic_title}"
            )
            let session = SessionRecord(id: UUID(), userID: "ana", topicID: 101, courseID: 1)
            try await store.createSession(session, context: context)
            #expect(try await store.context(ofSession: session.id) == context)
            #expect(try await store.session(id: session.id)?.topicID == 101)
        }
    }

    @Test func aCompletionQueuesOneNoticeInTheSameTransaction() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: logger)
            let store = PostgresConversationStore(client: client, logger: logger)
            let numeric = SessionRecord(id: UUID(), userID: "42", topicID: 101, courseID: 1)
            let named = SessionRecord(id: UUID(), userID: "007", topicID: 102)
            let free = SessionRecord(id: UUID(), userID: "ana")
            let catalog = SessionRecord(id: UUID(), userID: "ana", topicID: 103)
            for session in [numeric, named, free] { try await store.createSession(session, context: fromPlatform) }
            try await store.createSession(catalog, context: SessionContext(source: .catalog, topicTitle: "Local"))
            let turn = completion(of: numeric.id)
            _ = try await store.record(turn)
            _ = try await store.record(turn)  // a redelivery of the same turn
            _ = try await store.record(completion(of: numeric.id))  // another marker: the session is completed already
            _ = try await store.record(completion(of: named.id))
            _ = try await store.record(completion(of: free.id))  // no topic: nothing to tell
            _ = try await store.record(completion(of: catalog.id))  // a catalog topic is not the platform's
            let outbox = PostgresCompletionOutbox(client: client, logger: logger)
            #expect(try await outbox.backlog() == 2)
            let first = try #require(try await outbox.claim(lease: .seconds(60)))
            let second = try #require(try await outbox.claim(lease: .seconds(60)))
            #expect(try await outbox.claim(lease: .seconds(60)) == nil)
            #expect([first.sessionID, second.sessionID] == [numeric.id, named.id])
            let notices = try [first, second].map { try #require($0.completion) }
            let payloads = try notices.map { try #require(JSONSerialization.jsonObject(with: $0.jsonBody) as? [String: Any]) }
            #expect(payloads[0]["userId"] as? Int == 42)
            #expect(payloads[0]["topicId"] as? Int == 101 && payloads[0]["courseId"] as? Int == 1)
            #expect(payloads[0]["sessionId"] as? String == numeric.id.lowercased)
            #expect(
                (payloads[0]["completedAt"] as? String).flatMap { try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse($0) } != nil
            )
            // "007" is not a canonical number: it stays the string it is.
            #expect(payloads[1]["userId"] as? String == "007" && payloads[1]["courseId"] is NSNull)
            #expect(try await store.session(id: numeric.id)?.status == .completed)
            #expect(try await store.session(id: catalog.id)?.status == .completed)
        }
    }

    @Test func twoTurnsCompletingOneSessionAtOnceQueueOneNotice() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: logger)
            let store = PostgresConversationStore(client: client, logger: logger)
            let session = SessionRecord(id: UUID(), userID: "ana", topicID: 101)
            try await store.createSession(session, context: fromPlatform)
            let turns = (0..<4).map { _ in completion(of: session.id) }
            try await withThrowingTaskGroup(of: StoredReply.self) { group in
                for turn in turns { group.addTask { try await store.record(turn) } }
                for try await stored in group { #expect(stored.isNew) }
            }
            #expect(try await PostgresCompletionOutbox(client: client, logger: logger).backlog() == 1)
        }
    }

    @Test func aClaimIsHeldUntilItsLeaseEndsAndThenTheNewHolderOwnsTheRow() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: logger)
            let store = PostgresConversationStore(client: client, logger: logger)
            let session = SessionRecord(id: UUID(), userID: "ana", topicID: 101)
            try await store.createSession(session, context: fromPlatform)
            _ = try await store.record(completion(of: session.id))
            let outbox = PostgresCompletionOutbox(client: client, logger: logger)
            let claims = try await withThrowingTaskGroup(of: OutboxEntry?.self) { group in
                for _ in 0..<4 { group.addTask { try await outbox.claim(lease: .milliseconds(300)) } }
                return try await group.reduce(into: [OutboxEntry]()) { if let entry = $1 { $0.append(entry) } }
            }
            #expect(claims.count == 1)
            let stale = claims[0]
            try await eventually(timeout: .seconds(5), "the lease to end") { try await outbox.claim(lease: .seconds(60)) != nil }
            // The first holder's late failure must not shorten the new holder's lease.
            try await outbox.markFailed(stale, error: "late", retryIn: .zero)
            #expect(try await outbox.claim(lease: .seconds(60)) == nil)
            let rows = try await client.query("SELECT attempts, last_error FROM completion_outbox")
            for try await (attempts, lastError) in rows.decode((Int32, String?).self) {
                #expect(attempts == 2 && lastError == nil)
            }
            try await outbox.markDelivered(stale)  // delivered is delivered, whoever says it
            #expect(try await outbox.backlog() == 0)
        }
    }

    @Test func twoSendersDeliverEveryCompletionExactlyOnceThroughFailures() async throws {
        let platform = FakePlatform(.init(completionFailuresLeft: 3))
        try await platform.run { base in
            try await withIsolatedPostgres { client, _ in
                try await Migrator().migrate(client, logger: logger)
                let store = PostgresConversationStore(client: client, logger: logger)
                var sessions: [UUID] = []
                for index in 0..<6 {
                    let session = SessionRecord(id: UUID(), userID: "user-\(index)", topicID: 101)
                    try await store.createSession(session, context: fromPlatform)
                    _ = try await store.record(completion(of: session.id))
                    sessions.append(session.id)
                }
                let httpClient = HTTPClient(eventLoopGroupProvider: .singleton)
                let settings = PlatformSettings(
                    baseURL: base,
                    retryBase: .milliseconds(20),
                    retryMaximum: .milliseconds(50),
                    requestTimeout: .seconds(5)
                )
                let senders = (0..<3).map { _ in
                    CompletionSender(
                        outbox: PostgresCompletionOutbox(client: client, logger: logger),
                        platform: HTTPLearningPlatform(client: httpClient, settings: settings, logger: logger),
                        settings: settings,
                        logger: logger
                    )
                }
                let outbox = PostgresCompletionOutbox(client: client, logger: logger)
                // Three senders race for the rows, round after round, until all are sent.
                try await eventually(timeout: .seconds(20), "every completion is delivered") {
                    await withTaskGroup(of: Void.self) { group in
                        for sender in senders { group.addTask { _ = await sender.sendNext() } }
                    }
                    return try await outbox.backlog() == 0
                }
                try await httpClient.shutdown()
                #expect(platform.acceptedSessions.sorted() == sessions.map(\.lowercased).sorted())
                #expect(platform.state.withLock { $0.completionCalls } == 6 + 3)
                #expect(platform.state.withLock { $0.idempotencyKeys }.sorted() == sessions.map(\.lowercased).sorted())
                let rows = try await client.query("SELECT sum(attempts), count(*) FILTER (WHERE last_error IS NULL) FROM completion_outbox")
                for try await (attempts, clean) in rows.decode((Int64, Int64).self) {
                    #expect(attempts == 9)
                    #expect(clean == 6)
                }
            }
        }
    }

    @Test func thePlatformClientRetriesReadsAndMapsNotFound() async throws {
        var state = FakePlatform.State()
        state.readFailuresLeft = 2
        state.contexts["ana"] = ["userLevel": "intermediate", "completedTopicIds": [3, 5], "struggleTopics": [["title": "divisão"], "frações"]]
        state.topics[101] = [
            "title": "Frações", "description": "somar", "learningObjectives": "somar\ncomparar", "promptTemplate": "Ensine {topic_title}",
        ]
        state.courses[1] = ["course": ["title": "Matemática"], "progress": 0.5]
        let platform = FakePlatform(state)
        try await platform.run { base in
            let httpClient = HTTPClient(eventLoopGroupProvider: .singleton)
            let settings = PlatformSettings(baseURL: base, maxAttempts: 3, retryBase: .milliseconds(10), retryMaximum: .milliseconds(20))
            let client = HTTPLearningPlatform(client: httpClient, settings: settings, logger: logger)
            let learner = try await client.learnerContext(userID: "ana")
            #expect(learner == LearnerContext(userLevel: "intermediate", completedTopics: ["3", "5"], struggles: ["divisão", "frações"]))
            #expect(platform.state.withLock { $0.reads } == 3)
            let topic = try await client.topic(id: 101)
            #expect(
                topic
                    == PlatformTopic(
                        title: "Frações",
                        description: "somar",
                        promptTemplate: "Ensine {topic_title}",
                        learningObjectives: ["somar", "comparar"]
                    )
            )
            #expect(try await client.courseTitle(userID: "ana", courseID: 1) == "Matemática")
            await #expect(throws: PlatformError.notFound) { try await client.topic(id: 999) }
            #expect(try await client.learnerContext(userID: "new-learner") == LearnerContext())
            platform.state.withLock { $0.readFailuresLeft = 10 }
            await #expect {
                _ = try await client.topic(id: 101)
            } throws: { error in
                if case .unavailable = error as? PlatformError { return true }
                return false
            }
            #expect(platform.state.withLock { $0.readFailuresLeft } == 7)  // three attempts, then it gave up
            try await httpClient.shutdown()
        }
    }

    @Test func theCatalogIsReplacedAndReadBack() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: logger)
            let catalog = PostgresTopicCatalog(client: client, logger: logger)
            try await catalog.replace(with: [
                CatalogTopic(id: 1, title: "old"), CatalogTopic(id: 2, title: "Frações", courseID: 7, courseTitle: "Matemática"),
            ])
            try await catalog.replace(with: [
                CatalogTopic(id: 2, title: "Frações", learningObjectives: ["somar"], courseID: 7, courseTitle: "Matemática"),
                CatalogTopic(id: 3, title: "Porcentagem"),
            ])
            #expect(try await catalog.topic(id: 1) == nil)
            #expect(try await catalog.topic(id: 2)?.learningObjectives == ["somar"])
            #expect(try await catalog.courseTitle(id: 7) == "Matemática")
            #expect(try await catalog.courseTitle(id: 8) == nil)
            let store = PostgresConversationStore(client: client, logger: logger)
            let session = SessionRecord(id: UUID(), userID: "ana", topicID: 2)
            try await store.createSession(session)
            #expect(try await catalog.completedTopicTitles(userID: "ana").isEmpty)
            _ = try await store.record(completion(of: session.id))
            #expect(try await catalog.completedTopicTitles(userID: "ana") == ["Frações"])
        }
    }

    @Test func chatLogsArePagedNewestFirstAndPerUser() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: logger)
            let store = PostgresConversationStore(client: client, logger: logger)
            for user in ["ana", "bia"] {
                let session = SessionRecord(id: UUID(), userID: user)
                try await store.createSession(session)
                // An opening (no prompt) is not a log entry.
                _ = try await store.record(
                    CompletedTurn(
                        sessionID: session.id,
                        turnID: UUID(),
                        userContent: nil,
                        replyContent: "Olá",
                        rawReply: "Olá",
                        model: "m",
                        usage: .init(),
                        latencyMilliseconds: 1
                    )
                )
                for index in 0..<5 {
                    _ = try await store.record(
                        CompletedTurn(
                            sessionID: session.id,
                            turnID: UUID(),
                            userContent: "\(user) \(index)",
                            replyContent: "r\(index)",
                            rawReply: "r\(index)",
                            model: "m",
                            usage: .init(),
                            latencyMilliseconds: 1
                        )
                    )
                }
            }
            let first = try await store.chatLogs(userID: "ana", before: nil, limit: 3)
            #expect(first.map(\.prompt) == ["ana 4", "ana 3", "ana 2"])
            let second = try await store.chatLogs(userID: "ana", before: first.last?.messageID, limit: 3)
            #expect(second.map(\.prompt) == ["ana 1", "ana 0"])
            let everyone = try await store.chatLogs(userID: nil, before: nil, limit: 100)
            #expect(everyone.count == 10)
            #expect(everyone.first?.userID == "bia" && everyone.first?.response == "r4")
        }
    }
}
