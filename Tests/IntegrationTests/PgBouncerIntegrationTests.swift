import Foundation
import PostgresNIO
import Testing

@testable import Shared
@testable import Worker

/// Parley through PgBouncer in transaction mode (the one scripts/lib/pgbouncer.sh starts
/// in front of the test database): with `DATABASE_POOLER=pgbouncer` the migrations, a
/// turn's statements (unprepared), the ledger and the WhatsApp inbox work; without it,
/// the start-up check names the setting. In the `public` schema, as a deployment is
/// (PgBouncer takes no `search_path` at startup), with ids of its own.
@Suite("PgBouncer (real pooler)")
struct PgBouncerIntegrationTests {
    static func settings(pooler: DatabaseSettings.Pooler) throws -> DatabaseSettings {
        var environment = ["DATABASE_URL": try TestEnvironment.value("PARLEY_TEST_PGBOUNCER_URL")]
        environment["DATABASE_POOLER"] = pooler.rawValue
        return try DatabaseSettings(environment: EnvironmentReader(environment))
    }

    @Test func withoutThePoolerSettingTheStartupCheckNamesIt() async throws {
        guard case .misconfigured(let error) = try await Self.settings(pooler: .none).diagnose(logger: TestEnvironment.logger) else {
            Issue.record("PgBouncer's refusal of the startup parameters was not a configuration error")
            return
        }
        #expect(error.variable == "DATABASE_POOLER" && error.problem.contains("DATABASE_POOLER=pgbouncer"), "\(error)")
        #expect(try await Self.settings(pooler: .pgbouncer).diagnose(logger: TestEnvironment.logger) == nil)
    }

    @Test func aTurnIsStoredAndAWhatsAppMessageClaimedThroughThePooler() async throws {
        let settings = try Self.settings(pooler: .pgbouncer)
        #expect(settings.preparedStatements == false && settings.startupParameters.isEmpty)
        let client = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: TestEnvironment.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let logger = TestEnvironment.logger
            try await Migrator().migrate(client, logger: logger)
            let store = PostgresConversationStore(client: client, logger: logger, preparedStatements: false)
            let ledger = PostgresTurnLedger(client: client, logger: logger, preparedStatements: false)
            let opener = PostgresTurnOpener(client: client, logger: logger, preparedStatements: false)
            let user = TestEnvironment.uniqueName("pgbouncer")
            let session = SessionRecord(id: UUID(), userID: user)
            try await store.createSession(session)
            // Many turns on a pool of 10 client connections over PgBouncer's server
            // connections, each statement in a transaction of its own.
            for index in 1...20 {
                let turn = TurnEnvelope(
                    kind: .message,
                    sessionID: session.id,
                    userID: user,
                    content: "q\(index)",
                    gatewayID: "g",
                    deadline: Date().addingTimeInterval(60)
                )
                try await ledger.register(turn)
                let attempt = LedgerAttempt()
                let opening = try await opener.open(turn, attempt: attempt, holdFor: .seconds(30), historyLimit: 20, mayTake: true)
                #expect(opening.taken?.attemptNumber == 1)
                var completed = CompletedTurn(
                    sessionID: session.id,
                    turnID: turn.turnID,
                    userContent: turn.content,
                    replyContent: "a\(index)",
                    rawReply: "a\(index)",
                    model: "m",
                    usage: TokenUsage(),
                    latencyMilliseconds: 1
                )
                completed.attempt = attempt.id
                #expect(try await store.record(completed).isNew)
            }
            #expect(try await store.recentMessages(session: session.id, limit: 100).count == 40)

            let inbox = PostgresWhatsAppInbox(client: client, logger: logger)
            let sender = String(UInt64.random(in: 10_000_000...99_999_999))
            let id = "wamid.\(UUID().uuidString)"
            #expect(try await inbox.store([WhatsAppInbound(messageID: id, phoneNumberID: "1", sender: sender, kind: .text, text: "oi")]) == [id])
            let claimed = try await inbox.claim(limit: 1000, lease: .seconds(60))
            var mine = try #require(claimed.first { $0.inbound.messageID == id })
            mine.state = .sent
            #expect(try await inbox.save(mine))
            for other in claimed where other.inbound.messageID != id { try await inbox.release(other, error: nil, retryIn: .zero) }
        }
    }
}
