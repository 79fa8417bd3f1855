import Foundation
import PostgresNIO
import Testing

@testable import Shared
@testable import Worker

@Suite("PostgreSQL (real database)")
struct PostgresIntegrationTests {
    @Test func migrationsRacingFromSeveralProcessesApplyOnce() async throws {
        try await withIsolatedPostgres { client, _ in
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<6 {
                    group.addTask { try await Migrator().migrate(client, logger: TestEnvironment.logger) }
                }
                return try await group.reduce(into: [[Int]]()) { $0.append($1) }
            }
            #expect(applied.filter { !$0.isEmpty } == [ParleyMigrations.all.map(\.version)])
            let rows = try await client.query("SELECT version FROM schema_migrations ORDER BY version")
            var versions: [Int] = []
            for try await version in rows.decode(Int.self) { versions.append(version) }
            #expect(versions == ParleyMigrations.all.map(\.version))
            #expect(try await Migrator().migrate(client, logger: TestEnvironment.logger).isEmpty)
        }
    }

    @Test func aFailingMigrationLeavesNothingBehind() async throws {
        try await withIsolatedPostgres { client, _ in
            let broken = Migrator(migrations: [
                Migration(version: 1, name: "half", statements: ["CREATE TABLE half_written (id int)", "THIS IS NOT SQL"])
            ])
            await #expect(throws: StoreError.self) { try await broken.migrate(client, logger: TestEnvironment.logger) }
            let rows = try await client.query("SELECT count(*) FROM pg_tables WHERE tablename = 'half_written'")
            for try await count in rows.decode(Int.self) { #expect(count == 0) }
        }
    }

    @Test func aTurnIsStoredOnceEvenWhenTwoAttemptsRace() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger)
            let session = SessionRecord(id: UUID(), userID: "alice")
            try await store.createSession(session)
            let turn = CompletedTurn(
                sessionID: session.id,
                turnID: UUID(),
                userContent: "oi",
                replyContent: "olá",
                rawReply: "olá",
                model: "m",
                usage: TokenUsage(promptTokens: 1, completionTokens: 2),
                latencyMilliseconds: 5
            )
            let results = try await withThrowingTaskGroup(of: StoredReply.self) { group in
                for _ in 0..<4 { group.addTask { try await store.record(turn) } }
                return try await group.reduce(into: [StoredReply]()) { $0.append($1) }
            }
            #expect(results.filter(\.isNew).count == 1)
            #expect(Set(results.map(\.message.id)).count == 1)
            let messages = try await store.recentMessages(session: session.id, limit: 10)
            #expect(messages.map(\.role) == [.user, .assistant])
            #expect(try await store.reply(forTurn: turn.turnID)?.id == results[0].message.id)
        }
    }

    /// A statement that failed to prepare on a connection (here: the tables did not
    /// exist yet, as for a gateway started before the migration) runs once the cause is
    /// gone, on a pool of one connection: PostgresNIO would keep the failed prepare on
    /// that connection for good, so the runner closes it.
    @Test(arguments: [true, false])
    func aStatementThatFailedToPrepareRunsOnceTheCauseIsGone(prepared: Bool) async throws {
        try await withIsolatedPostgres(maximumConnections: 1) { client, _ in
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger, preparedStatements: prepared)
            let ledger = PostgresTurnLedger(client: client, logger: TestEnvironment.logger, preparedStatements: prepared)
            let session = SessionRecord(id: UUID(), userID: "alice")
            let turn = TurnEnvelope(kind: .message, sessionID: session.id, userID: "alice", content: "olá", gatewayID: "g")
            await #expect(throws: StoreError.self) { try await store.turnStart(session: session.id, turn: turn.turnID) }
            await #expect(throws: StoreError.self) { try await ledger.register(turn) }

            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            try await store.createSession(session)
            #expect(try await store.turnStart(session: session.id, turn: turn.turnID).session?.id == session.id)
            try await ledger.register(turn)
            let claim = try await ledger.claim(turn, attempt: LedgerAttempt(), holdFor: .seconds(30))
            #expect(claim == .granted(attemptNumber: 1))
        }
    }

    /// The worker's two reads of a turn (issue 11: one round trip each) give what the
    /// separate reads give, whether or not there is a session, a reply, a context.
    /// Prepared (the default) and unprepared (`DATABASE_PREPARED_STATEMENTS=off`), twice
    /// over each connection so that the second run uses the prepared statement.
    @Test(arguments: [true, false])
    func theCombinedReadsOfATurnMatchTheSeparateOnes(prepared: Bool) async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger, preparedStatements: prepared)
            let nothing = try await store.turnStart(session: UUID(), turn: UUID())
            #expect(nothing == TurnStart(session: nil, storedReply: nil))
            let empty = try await store.promptMaterial(session: UUID(), historyLimit: 5)
            #expect(empty == PromptMaterial(context: nil, history: []))

            let session = SessionRecord(id: UUID(), userID: "alice", topicID: 7, courseID: 2)
            let context = SessionContext(source: .catalog, topicTitle: "Frações", learningObjectives: ["somar", "comparar"], userLevel: "iniciante")
            try await store.createSession(session, context: context)
            var turns: [UUID] = []
            for index in 0..<4 {
                let turn = CompletedTurn(
                    sessionID: session.id,
                    turnID: UUID(),
                    userContent: "pergunta \(index)",
                    replyContent: "resposta \(index)",
                    rawReply: "resposta \(index)",
                    model: "m",
                    usage: TokenUsage(),
                    latencyMilliseconds: 1
                )
                _ = try await store.record(turn)
                turns.append(turn.turnID)
            }
            let started = try await store.turnStart(session: session.id, turn: turns[2])
            #expect(started.session == (try await store.session(id: session.id)))
            #expect(started.storedReply == (try await store.reply(forTurn: turns[2])))
            #expect(started.storedReply?.content == "resposta 2")
            #expect(try await store.turnStart(session: session.id, turn: UUID()).storedReply == nil)

            let material = try await store.promptMaterial(session: session.id, historyLimit: 5)
            #expect(material.context == (try await store.context(ofSession: session.id)))
            #expect(material.context?.learningObjectives == ["somar", "comparar"])
            #expect(material.history == (try await store.recentMessages(session: session.id, limit: 5)))
            #expect(material.history.map(\.content) == ["resposta 1", "pergunta 2", "resposta 2", "pergunta 3", "resposta 3"])
            // An opening (no user message) and a completion, through the same statement.
            var opening = CompletedTurn(
                sessionID: session.id,
                turnID: UUID(),
                userContent: nil,
                replyContent: "fim",
                rawReply: "fim {TOPIC_COMPLETED}",
                model: "m",
                usage: TokenUsage(),
                latencyMilliseconds: 1
            )
            opening.completesSession = true
            #expect(try await store.record(opening).isNew)
            #expect(try await store.session(id: session.id)?.status == .completed)
            #expect(try await store.recentMessages(session: session.id, limit: 1).map(\.content) == ["fim"])
        }
    }

    /// A statement the server refuses is not an outage, also inside a transaction
    /// (where PostgresNIO wraps the server's error): a turn must not be retried in place
    /// for minutes as if the database were down.
    @Test func aRefusedStatementInATransactionIsAQueryFailureNotAnOutage() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger)
            // A turn of a session that does not exist: the foreign key refuses it (23503).
            let turn = CompletedTurn(
                sessionID: UUID(),
                turnID: UUID(),
                userContent: "oi",
                replyContent: "olá",
                rawReply: "olá",
                model: "m",
                usage: TokenUsage(),
                latencyMilliseconds: 5
            )
            do {
                _ = try await store.record(turn)
                Issue.record("PostgreSQL stored a turn of no session")
            } catch StoreError.queryFailed(let why) {
                #expect(why.hasPrefix("23503"), "\(why)")
            } catch {
                Issue.record("classified as \(error)")
            }
        }
    }

    /// A NUL character from a network peer (a model's answer, the platform's titles) is
    /// stored without it: PostgreSQL text cannot hold U+0000, and refusing the turn would
    /// only fail it on every redelivery.
    @Test func aNulFromAPeerIsStoredWithoutIt() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger)
            let session = SessionRecord(id: UUID(), userID: "alice")
            try await store.createSession(session, context: SessionContext(source: .platform, topicTitle: "Fra\u{0}ções"))
            let turn = CompletedTurn(
                sessionID: session.id,
                turnID: UUID(),
                userContent: "oi\u{0}tudo bem",
                replyContent: "o\u{0}lá",
                rawReply: "o\u{0}lá",
                model: "m",
                usage: TokenUsage(),
                latencyMilliseconds: 5
            )
            let stored = try await store.record(turn)
            #expect(stored.message.content == "olá")
            #expect(try await store.recentMessages(session: session.id, limit: 10).map(\.content) == ["oitudo bem", "olá"])
            #expect(try await store.context(ofSession: session.id)?.topicTitle == "Frações")
        }
    }

    /// A login the server refuses is a configuration error naming DATABASE_URL and the
    /// server's reason; a server that does not answer is an outage.
    @Test func aRefusedLoginIsAConfigurationErrorAndADeadServerAnOutage() async throws {
        let good = try TestEnvironment.database()
        #expect(await good.diagnose(logger: TestEnvironment.logger) == nil)
        var wrongPassword = good
        wrongPassword.password = "not-the-password"
        var wrongDatabase = good
        wrongDatabase.database = "no_such_database"
        for (settings, state) in [(wrongPassword, "28P01"), (wrongDatabase, "3D000")] {
            let problem = await settings.diagnose(logger: TestEnvironment.logger)
            guard case .misconfigured(let error) = problem else {
                Issue.record("\(state) was not a configuration error: \(String(describing: problem))")
                continue
            }
            #expect(error.variable == "DATABASE_URL")
            #expect(error.problem.contains(state), "\(error)")
            #expect(!error.problem.contains("not-the-password"))
        }
        var nobody = good
        nobody.port = 1
        guard case .unreachable = await nobody.diagnose(logger: TestEnvironment.logger) else {
            Issue.record("a closed port was not an outage")
            return
        }
    }

    @Test func historyIsTheNewestMessagesOldestFirst() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger)
            let session = SessionRecord(id: UUID(), userID: "alice")
            try await store.createSession(session)
            for index in 1...4 {
                _ = try await store.record(
                    CompletedTurn(
                        sessionID: session.id,
                        turnID: UUID(),
                        userContent: "q\(index)",
                        replyContent: "a\(index)",
                        rawReply: "a\(index)",
                        model: "m",
                        usage: TokenUsage(),
                        latencyMilliseconds: 1
                    )
                )
            }
            let recent = try await store.recentMessages(session: session.id, limit: 3)
            #expect(recent.map(\.content) == ["a3", "q4", "a4"])
            let all = try await store.messages(session: session.id, afterID: 0, limit: 100)
            #expect(all.count == 8)
            let after = try await store.messages(session: session.id, afterID: all[5].id, limit: 100)
            #expect(after.map(\.content) == ["q4", "a4"])
            #expect(try await store.session(id: session.id)?.userID == "alice")
            #expect(try await store.session(id: UUID()) == nil)
        }
    }

    @Test func anUnreachableDatabaseIsReportedAsUnavailable() async throws {
        var settings = try TestEnvironment.database()
        settings.port = 1
        let client = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: TestEnvironment.logger)
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger, timeout: .seconds(2))
            await #expect { try await store.ping() } throws: { error in
                if case .unavailable = error as? StoreError { return true }
                return false
            }
        }
    }
}
