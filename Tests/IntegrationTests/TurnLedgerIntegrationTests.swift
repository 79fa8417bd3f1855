import Foundation
import PostgresNIO
import Testing

@testable import Shared

/// The turn ledger on real PostgreSQL: order across gateways, one attempt at a time,
/// takeover by a redelivery, and the store's fence.
@Suite("Turn ledger (real database)")
struct TurnLedgerIntegrationTests {
    struct Fixture {
        let ledger: PostgresTurnLedger
        let store: PostgresConversationStore
        let session: UUID

        func turn(_ content: String, deadline: Date = Date().addingTimeInterval(60)) -> TurnEnvelope {
            TurnEnvelope(kind: .message, sessionID: session, userID: "alice", content: content, gatewayID: "g", deadline: deadline)
        }

        func answer(_ turn: TurnEnvelope, by attempt: UUID) async throws(StoreError) -> StoredReply {
            var record = CompletedTurn(
                sessionID: session, turnID: turn.turnID, userContent: turn.content, replyContent: "re: \(turn.content)", rawReply: "re",
                model: "m", usage: TokenUsage(), latencyMilliseconds: 1
            )
            record.attempt = attempt
            return try await store.record(record)
        }
    }

    func withLedger(_ body: @Sendable (Fixture) async throws -> Void) async throws {
        try await withIsolatedPostgres { client, _ in
            try await Migrator().migrate(client, logger: TestEnvironment.logger)
            let store = PostgresConversationStore(client: client, logger: TestEnvironment.logger)
            let session = UUID()
            try await store.createSession(SessionRecord(id: session, userID: "alice"))
            try await body(Fixture(ledger: PostgresTurnLedger(client: client, logger: TestEnvironment.logger), store: store, session: session))
        }
    }

    @Test func aLaterTurnWaitsUntilTheEarlierOneIsAnswered() async throws {
        try await withLedger { f async throws in
            let (first, second) = (f.turn("T1"), f.turn("T2"))
            try await f.ledger.register(first)  // through gateway A
            try await f.ledger.register(second)  // through gateway B, while T1 is in flight
            let (a, b) = (UUID(), UUID())
            #expect(try await f.ledger.claim(second, attempt: b, takeover: false, holdFor: .seconds(10)) == .waitForEarlierTurn)
            #expect(try await f.ledger.claim(first, attempt: a, takeover: false, holdFor: .seconds(10)) == .granted(attemptNumber: 1))
            #expect(try await f.ledger.claim(second, attempt: b, takeover: false, holdFor: .seconds(10)) == .waitForEarlierTurn)
            #expect(try await f.answer(first, by: a).isNew)
            #expect(try await f.ledger.claim(second, attempt: b, takeover: false, holdFor: .seconds(10)) == .granted(attemptNumber: 1))
        }
    }

    @Test func anErrorReplyAWithdrawnTurnOrAPassedDeadlineFreesTheNextTurn() async throws {
        try await withLedger { f async throws in
            let failed = f.turn("fails")
            let withdrawn = f.turn("never published")
            let overdue = f.turn("abandoned", deadline: Date().addingTimeInterval(-1))
            let last = f.turn("last")
            for turn in [failed, withdrawn, overdue, last] { try await f.ledger.register(turn) }
            let attempt = UUID()
            #expect(try await f.ledger.claim(failed, attempt: attempt, takeover: false, holdFor: .seconds(10)) == .granted(attemptNumber: 1))
            #expect(try await f.ledger.settle(turnID: failed.turnID, attempt: attempt, as: .failed))
            #expect(try await f.ledger.claim(last, attempt: UUID(), takeover: false, holdFor: .seconds(10)) == .waitForEarlierTurn)
            try await f.ledger.withdraw(turnID: withdrawn.turnID)
            // The overdue one (its gateway died before publishing it) no longer blocks.
            #expect(try await f.ledger.claim(last, attempt: UUID(), takeover: false, holdFor: .seconds(10)) == .granted(attemptNumber: 1))
            #expect(try await f.ledger.claim(failed, attempt: UUID(), takeover: false, holdFor: .seconds(10)) == .settled(.failed))
        }
    }

    @Test func aCopyWaitsForTheAttemptHoldingTheTurnAndNeverStoresAfterIt() async throws {
        try await withLedger { f async throws in
            let turn = f.turn("published twice")
            try await f.ledger.register(turn)
            let (original, copy) = (UUID(), UUID())
            #expect(try await f.ledger.claim(turn, attempt: original, takeover: false, holdFor: .seconds(10)) == .granted(attemptNumber: 1))
            #expect(try await f.ledger.claim(turn, attempt: copy, takeover: false, holdFor: .seconds(10)) == .heldByAnotherAttempt)
            let stored = try await f.answer(turn, by: original)
            #expect(stored.isNew)
            #expect(try await f.ledger.claim(turn, attempt: copy, takeover: false, holdFor: .seconds(10)) == .settled(.answered))
            // Even an attempt that never asked gets the stored answer, not a second one.
            let late = try await f.answer(turn, by: copy)
            #expect(!late.isNew && late.message.id == stored.message.id)
        }
    }

    @Test func aRedeliveryTakesTheTurnOverAndTheOldAttemptIsFencedOut() async throws {
        try await withLedger { f async throws in
            let turn = f.turn("its worker's connection dropped")
            try await f.ledger.register(turn)
            let (old, new) = (UUID(), UUID())
            #expect(try await f.ledger.claim(turn, attempt: old, takeover: false, holdFor: .seconds(10)) == .granted(attemptNumber: 1))
            #expect(try await f.ledger.claim(turn, attempt: new, takeover: true, holdFor: .seconds(10)) == .granted(attemptNumber: 2))
            #expect(try await f.ledger.renew(turnID: turn.turnID, attempt: old, holdFor: .seconds(10)) == false)
            #expect(try await f.ledger.settle(turnID: turn.turnID, attempt: old, as: .failed) == false)
            await #expect(throws: StoreError.superseded(turnID: turn.turnID)) { _ = try await f.answer(turn, by: old) }
            #expect(try await f.store.reply(forTurn: turn.turnID) == nil)
            #expect(try await f.ledger.renew(turnID: turn.turnID, attempt: new, holdFor: .seconds(10)))
            #expect(try await f.answer(turn, by: new).isNew)
        }
    }

    @Test func anExpiredHoldCanBeTakenAndAReleasedOneAtOnce() async throws {
        try await withLedger { f async throws in
            let turn = f.turn("held by a worker that died")
            try await f.ledger.register(turn)
            let (dead, next, third) = (UUID(), UUID(), UUID())
            #expect(try await f.ledger.claim(turn, attempt: dead, takeover: false, holdFor: .milliseconds(50)) == .granted(attemptNumber: 1))
            try await eventually("the hold runs out") {
                try await f.ledger.claim(turn, attempt: next, takeover: false, holdFor: .seconds(10)) == .granted(attemptNumber: 2)
            }
            try await f.ledger.release(turnID: turn.turnID, attempt: next)
            #expect(try await f.ledger.claim(turn, attempt: third, takeover: false, holdFor: .seconds(10)) == .granted(attemptNumber: 3))
        }
    }

    @Test func gatewaysRacingForOneSessionGetDistinctPlaces() async throws {
        try await withLedger { f async throws in
            let turns = (0..<12).map { f.turn("racing \($0)") }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for turn in turns { group.addTask { try await f.ledger.register(turn) } }
                try await group.waitForAll()
            }
            // Registering again (a re-publish of the same turn) keeps its place.
            try await f.ledger.register(turns[0])
            let granted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for turn in turns { group.addTask { try await f.ledger.claim(turn, attempt: UUID(), takeover: false, holdFor: .seconds(10)) != .waitForEarlierTurn } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(granted == 1, "exactly the first of the session's turns may be generated")
        }
    }

    @Test func aTurnNoGatewayRegisteredIsEnteredByTheWorker() async throws {
        try await withLedger { f async throws in
            let turn = f.turn("from a gateway older than the ledger")
            #expect(try await f.ledger.claim(turn, attempt: UUID(), takeover: false, holdFor: .seconds(10)) == .granted(attemptNumber: 1))
            // And an error reply for a turn the ledger does not know is still sent.
            #expect(try await f.ledger.settle(turnID: UUID(), attempt: UUID(), as: .failed))
        }
    }
}
