import Foundation
import PostgresNIO
import Testing

@testable import Shared
@testable import Worker

/// What the chat page reads and writes on PostgreSQL: the user's sessions in pages,
/// the topic catalog, and accounts.
@Suite("Chat page's reads and accounts (real database)")
struct PageStoreIntegrationTests {
    @Test func aUsersSessionsComeNewestFirstInPagesThatNeitherRepeatNorSkip() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger)
            let directory = PostgresSessionDirectory(client: client, logger: TestEnvironment.logger)
            // Seven sessions, three of them started in the same microsecond (the page's
            // edge falls among them), and one of another user.
            let base = Date(timeIntervalSince1970: 1_800_000_000.123456)
            var ids: [UUID] = []
            for offset in [0, 1, 1, 1, 2, 3, 4] {
                let id = UUID()
                try await store.createSession(
                    SessionRecord(id: id, userID: "ana", topicID: offset == 4 ? 101 : nil, startedAt: base.addingTimeInterval(Double(offset))),
                    context: SessionContext(source: offset == 4 ? .catalog : .none, topicTitle: offset == 4 ? "Frações" : nil)
                )
                ids.append(id)
            }
            try await store.createSession(SessionRecord(id: UUID(), userID: "bia"))
            _ = try await store.record(
                CompletedTurn(
                    sessionID: ids[0],
                    turnID: UUID(),
                    userContent: "primeira pergunta",
                    replyContent: "r",
                    rawReply: "r",
                    model: "m",
                    usage: TokenUsage(),
                    latencyMilliseconds: 1
                )
            )

            var seen: [SessionSummary] = []
            var cursor: SessionCursor? = nil
            repeat {
                let page = try await directory.sessions(ofUser: "ana", before: cursor, limit: 2)
                seen += page
                cursor = page.count == 2 ? page.last.map { SessionCursor(text: $0.cursor.text)! } : nil
            } while cursor != nil
            #expect(seen.count == 7)
            #expect(Set(seen.map(\.id)) == Set(ids))
            #expect(seen.map(\.startedAtMicroseconds) == seen.map(\.startedAtMicroseconds).sorted(by: >))
            #expect(seen.first?.topicTitle == "Frações" && seen.first?.topicID == 101)
            #expect(seen.last?.id == ids[0] && seen.last?.firstMessage == "primeira pergunta")
            #expect(seen.last?.startedAtMicroseconds == 1_800_000_000_123_456)
            #expect(try await directory.sessions(ofUser: "nobody", before: nil, limit: 10).isEmpty)
        }
    }

    @Test func theCatalogListsItsTopicsByCourse() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let catalog = PostgresTopicCatalog(client: client, logger: TestEnvironment.logger)
            try await catalog.replace(with: [
                CatalogTopic(id: 3, title: "Sem curso", learningObjectives: []),
                CatalogTopic(id: 201, title: "Variáveis", learningObjectives: ["declarar"], courseID: 2, courseTitle: "Programação"),
                CatalogTopic(id: 101, title: "Frações", description: "partes", learningObjectives: [], courseID: 1, courseTitle: "Matemática"),
            ])
            #expect(try await catalog.topics(limit: 10).map(\.id) == [101, 201, 3])
            #expect(try await catalog.topics(limit: 1).first == (try await catalog.topic(id: 101)))
            #expect(try await catalog.topic(id: 101)?.description == "partes")
        }
    }

    @Test func anAccountIsCreatedOnceAndNeverOverAnotherSignInsSessions() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let accounts = PostgresAccountStore(client: client, logger: TestEnvironment.logger)
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger)
            // Four registrations of one name at once: one wins.
            let outcomes = try await withThrowingTaskGroup(of: AccountCreation.self) { group in
                for index in 0..<4 { group.addTask { try await accounts.create(userID: "ana", passwordHash: "hash-\(index)") } }
                return try await group.reduce(into: [AccountCreation]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .created }.count == 1)
            let hash = try #require(try await accounts.passwordHash(userID: "ana"))
            #expect(hash.hasPrefix("hash-"))
            #expect(try await accounts.passwordHash(userID: "bia") == nil)

            // "carla" has sessions of an API key or an identity provider: not taken over.
            try await store.createSession(SessionRecord(id: UUID(), userID: "carla"))
            #expect(try await accounts.create(userID: "carla", passwordHash: "h") == .taken)
            #expect(try await accounts.passwordHash(userID: "carla") == nil)

            try await accounts.recordLogin(userID: "ana")
            var noted: [Bool] = []
            for try await value in try await client.query("SELECT last_login_at IS NOT NULL FROM accounts WHERE user_id = 'ana'").decode(Bool.self) {
                noted.append(value)
            }
            #expect(noted == [true])
        }
    }
}
