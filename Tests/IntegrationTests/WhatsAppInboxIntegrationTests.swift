import Foundation
import PostgresNIO
import Testing

@testable import Shared
@testable import Worker

/// The WhatsApp channel's messages on PostgreSQL: stored once per message id, claimed
/// one per sender and in order, written only by the claim's holder, and where a turn
/// stands read from the ledger and the store.
@Suite("WhatsApp inbox (real database)")
struct WhatsAppInboxIntegrationTests {
    func inbound(_ id: String, from sender: String, _ text: String = "hi") -> WhatsAppInbound {
        WhatsAppInbound(messageID: id, phoneNumberID: "1065", sender: sender, kind: .text, text: text)
    }

    @Test func aMessageIsStoredOnceAndEachSendersMessagesAreClaimedOneAtATimeInOrder() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let inbox = PostgresWhatsAppInbox(client: client, logger: TestEnvironment.logger)
            let stored = try await inbox.store([inbound("wamid.1", from: "111"), inbound("wamid.2", from: "111"), inbound("wamid.3", from: "222")])
            #expect(stored == ["wamid.1", "wamid.2", "wamid.3"])
            // A redelivery (one old id, one new) stores only the new one.
            #expect(try await inbox.store([inbound("wamid.2", from: "111", "changed"), inbound("wamid.4", from: "111")]) == ["wamid.4"])
            #expect(try await inbox.backlog() == 4)

            let first = try await inbox.claim(limit: 10, lease: .seconds(60))
            #expect(first.map(\.inbound.messageID) == ["wamid.1", "wamid.3"])
            #expect(first.allSatisfy { $0.attempts == 1 && $0.state == .received })
            // Claimed, the oldest of each sender holds back that sender's next ones.
            #expect(try await inbox.claim(limit: 10, lease: .seconds(60)).isEmpty)

            var done = first[0]
            done.state = .sent
            done.reply = "hello"
            #expect(try await inbox.save(done))
            let next = try await inbox.claim(limit: 10, lease: .seconds(60))
            #expect(next.map(\.inbound.messageID) == ["wamid.2"])
            #expect(next.first?.inbound.text == "hi")
            #expect(try await inbox.backlog() == 3)
        }
    }

    @Test func onlyTheClaimsHolderWritesAndAReleasedMessageComesBackWhenDue() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let inbox = PostgresWhatsAppInbox(client: client, logger: TestEnvironment.logger)
            _ = try await inbox.store([inbound("wamid.1", from: "111")])
            var claimed = try #require(try await inbox.claim(limit: 1, lease: .seconds(60)).first)
            claimed.state = .submitted
            claimed.sessionID = UUID()
            claimed.turnID = UUID()
            claimed.submissions = 1
            #expect(try await inbox.save(claimed))
            #expect(try await inbox.renew(claimed, lease: .seconds(60)))

            var stranger = claimed
            stranger.claim = UUID()
            stranger.state = .sent
            #expect(try await inbox.save(stranger) == false)
            #expect(try await inbox.renew(stranger, lease: .seconds(60)) == false)

            try await inbox.release(claimed, error: "llm_unavailable: down", retryIn: .zero)
            #expect(try await inbox.save(claimed) == false)
            let again = try #require(try await inbox.claim(limit: 1, lease: .seconds(60)).first)
            #expect(again.state == .submitted && again.sessionID == claimed.sessionID && again.turnID == claimed.turnID)
            #expect(again.submissions == 1 && again.attempts == 2 && again.lastError == "llm_unavailable: down")

            // Released with a delay: not due before it.
            try await inbox.release(again, error: nil, retryIn: .seconds(60))
            #expect(try await inbox.claim(limit: 1, lease: .seconds(60)).isEmpty)
        }
    }

    @Test func aTurnsStandingComesFromItsReplyAndItsLedgerRow() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let inbox = PostgresWhatsAppInbox(client: client, logger: TestEnvironment.logger)
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger)
            let ledger = PostgresTurnLedger(client: client, logger: TestEnvironment.logger)
            let sessionID = UUID()
            try await store.createSession(SessionRecord(id: sessionID, userID: "whatsapp:111"))
            func turn(deadline: Date = Date().addingTimeInterval(120)) -> TurnEnvelope {
                TurnEnvelope(kind: .message, sessionID: sessionID, userID: "whatsapp:111", content: "hi", gatewayID: "g", deadline: deadline)
            }

            #expect(try await inbox.standing(ofTurn: UUID()) == .unknown)

            let open = turn()
            try await ledger.register(open)
            #expect(try await inbox.standing(ofTurn: open.turnID) == .open)

            // Review finding: an overdue turn read as ended stayed queued, and a copy of
            // it still in the broker could be generated next to the new turn. Reading
            // it ends it in the ledger: a worker's claim now finds it settled.
            let overdue = turn(deadline: Date().addingTimeInterval(-120))
            try await ledger.register(overdue)
            #expect(try await inbox.standing(ofTurn: overdue.turnID) == .ended)
            #expect(
                try await ledger.claim(overdue, attempt: LedgerAttempt(), holdFor: .seconds(30))
                    == .settled(
                        .failed,
                        SettledFailure(code: .expired, message: "the message could not be answered before its deadline; send it again")
                    )
            )
            #expect(try await inbox.standing(ofTurn: overdue.turnID) == .ended)

            let withdrawn = turn()
            try await ledger.withdraw(withdrawn)
            #expect(try await inbox.standing(ofTurn: withdrawn.turnID) == .withdrawn)

            _ = try await store.record(
                CompletedTurn(
                    sessionID: sessionID,
                    turnID: open.turnID,
                    userContent: "hi",
                    replyContent: "hello there",
                    rawReply: "hello there",
                    model: "m",
                    usage: TokenUsage(),
                    latencyMilliseconds: 1
                )
            )
            #expect(try await inbox.standing(ofTurn: open.turnID) == .answered("hello there"))
        }
    }

    /// Review finding: a sequence number is taken at insert, not at commit, so a
    /// delivery that committed later sorted before a message already claimed. A
    /// sender's deliveries are stored one at a time.
    @Test func aSendersDeliveriesAreStoredOneAtATime() async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let inbox = PostgresWhatsAppInbox(client: client, logger: TestEnvironment.logger)
            let (held, release) = AsyncStream.makeStream(of: Void.self)
            let (locked, lockedSignal) = AsyncStream.makeStream(of: Void.self)
            try await withThrowingTaskGroup(of: Void.self) { group in
                // A first delivery of the sender, still open: it holds the sender's lock.
                group.addTask {
                    try await client.withTransaction(logger: TestEnvironment.logger) { connection in
                        try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended('111', 7))", logger: TestEnvironment.logger)
                        lockedSignal.yield()
                        for await _ in held { break }
                    }
                }
                for await _ in locked { break }
                let second = Task { try await inbox.store([inbound("wamid.2", from: "111")]) }
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await inbox.backlog() == 0, "the second delivery was stored while the first was open")
                // Another sender is not held up.
                #expect(try await inbox.store([inbound("wamid.9", from: "999")]) == ["wamid.9"])
                release.yield()
                try await group.next()
                #expect(try await second.value == ["wamid.2"])
            }
        }
    }
}
