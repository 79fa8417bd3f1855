import Foundation
import PostgresNIO
import Testing

@testable import Shared

/// `PostgresTurnOpener`, the one statement a worker runs when a turn arrives: it takes
/// exactly when the ledger's take would, reads the history the take saw, and takes
/// nothing it must not hold.
extension TurnLedgerIntegrationTests {
    static func opener(_ f: Fixture, prepared: Bool = true) -> PostgresTurnOpener {
        PostgresTurnOpener(client: f.client, logger: TestEnvironment.logger, preparedStatements: prepared)
    }

    static func open(
        _ turn: TurnEnvelope,
        _ f: Fixture,
        by attempt: LedgerAttempt = LedgerAttempt(),
        mayTake: Bool = true,
        prepared: Bool = true
    ) async throws -> TurnOpening {
        try await opener(f, prepared: prepared).open(turn, attempt: attempt, holdFor: .seconds(10), historyLimit: 10, mayTake: mayTake)
    }

    /// Who holds the turn in the ledger (nil: nobody).
    static func holder(of turn: TurnEnvelope, _ f: Fixture) async throws -> UUID? {
        for try await holder in try await f.client.query("SELECT holder FROM turns WHERE turn_id = \(turn.turnID)").decode(UUID?.self) {
            return holder
        }
        return nil
    }

    @Test(arguments: [true, false])
    func openingAFreeTurnTakesItWithTheHistoryOfTheTurnsBeforeIt(prepared: Bool) async throws {
        try await withLedger { f async throws in
            let (first, second) = (f.turn("T1"), f.turn("T2"))
            try await f.ledger.register(first)
            try await f.ledger.register(second)
            let a = LedgerAttempt()
            let opened = try await Self.open(first, f, by: a, prepared: prepared)
            #expect(opened.taken?.attemptNumber == 1)
            #expect(opened.taken?.material.history == [])
            #expect(opened.start.session?.status == .active)
            #expect(opened.start.storedReply == nil)
            #expect(try await Self.holder(of: first, f) == a.id)
            // The turn behind it waits, and reads nothing while it does.
            let waiting = try await Self.open(second, f, prepared: prepared)
            #expect(waiting.taken == nil)
            #expect(try await Self.holder(of: second, f) == nil)
            #expect(try await f.answer(first, by: a).isNew)
            // Once the first is answered, the second is taken with it in its history.
            let b = LedgerAttempt()
            let next = try await Self.open(second, f, by: b, prepared: prepared)
            #expect(next.taken?.attemptNumber == 1)
            #expect(next.taken?.material.history.map(\.content) == ["T1", "re: T1"])
            #expect(try await f.ledger.claim(second, attempt: LedgerAttempt(), holdFor: .seconds(10)) == .heldByAnotherAttempt)
        }
    }

    @Test func anAnsweredTurnComesBackWithItsReplyAndIsNotTaken() async throws {
        try await withLedger { f async throws in
            let turn = f.turn("once")
            try await f.ledger.register(turn)
            let a = LedgerAttempt()
            #expect(try await Self.open(turn, f, by: a).taken != nil)
            #expect(try await f.answer(turn, by: a).isNew)
            let again = try await Self.open(turn, f, by: LedgerAttempt(takeover: true))
            #expect(again.start.storedReply?.content == "re: once")
            #expect(again.taken == nil)
        }
    }

    /// A reply stored by a worker older than the ledger leaves the turn queued: the
    /// opening must see the reply and leave the turn alone, not hold it.
    @Test func aTurnWithAReplyStoredOutsideTheLedgerIsNotTaken() async throws {
        try await withLedger { f async throws in
            let turn = f.turn("answered by an old worker")
            try await f.ledger.register(turn)
            #expect(try await f.store.record(f.completed(turn, by: nil)).isNew)
            let opened = try await Self.open(turn, f)
            #expect(opened.start.storedReply?.content == "re: answered by an old worker")
            #expect(opened.taken == nil)
            #expect(try await Self.holder(of: turn, f) == nil)
        }
    }

    /// A redelivery of the same copy takes the turn over from the attempt that holds
    /// it (its worker is gone); another copy's delivery does not.
    @Test(arguments: [true, false])
    func aRedeliveryOpensTheTurnOverTheAttemptThatHoldsIt(prepared: Bool) async throws {
        try await withLedger { f async throws in
            let turn = f.turn("again")
            try await f.ledger.register(turn)
            let copy = UUID()
            let first = LedgerAttempt(copy: copy)
            #expect(try await Self.open(turn, f, by: first, prepared: prepared).taken?.attemptNumber == 1)
            #expect(try await Self.open(turn, f, by: LedgerAttempt(takeover: true, copy: UUID()), prepared: prepared).taken == nil)
            let redelivery = LedgerAttempt(takeover: true, copy: copy)
            #expect(try await Self.open(turn, f, by: redelivery, prepared: prepared).taken?.attemptNumber == 2)
            #expect(try await Self.holder(of: turn, f) == redelivery.id)
            await #expect(throws: StoreError.superseded(turnID: turn.turnID)) { _ = try await f.answer(turn, by: first) }
        }
    }

    /// A turn the worker refuses (another user's session, a completed one, past its
    /// deadline) must not be held: the refusal settles it, and a hold would block the
    /// session's next turn until it ran out if the settle failed.
    @Test func aTurnThatWillBeRefusedIsReadButNotTaken() async throws {
        try await withLedger { f async throws in
            var foreign = f.turn("not yours")
            foreign.userID = "mallory"
            try await f.ledger.register(foreign)
            let opened = try await Self.open(foreign, f)
            #expect(opened.start.session?.userID == "alice")
            #expect(opened.taken == nil)
            #expect(try await Self.holder(of: foreign, f) == nil)
            #expect(try await f.ledger.settle(turnID: foreign.turnID, attempt: LedgerAttempt(), as: .failed, failure: nil))

            let late = f.turn("too late")
            try await f.ledger.register(late)
            #expect(try await Self.open(late, f, mayTake: false).taken == nil)
            #expect(try await Self.holder(of: late, f) == nil)
            #expect(try await f.ledger.settle(turnID: late.turnID, attempt: LedgerAttempt(), as: .failed, failure: nil))

            try await f.client.query("UPDATE sessions SET status = 'completed' WHERE id = \(f.session)")
            let after = f.turn("after the end")
            try await f.ledger.register(after)
            let closed = try await Self.open(after, f)
            #expect(closed.start.session?.status == .completed)
            #expect(closed.taken == nil)
            #expect(try await Self.holder(of: after, f) == nil)
        }
    }

    @Test func aTurnNoGatewayEnteredIsNotTakenUntilTheLedgerEntersIt() async throws {
        try await withLedger { f async throws in
            let turn = f.turn("from a gateway that could not reach the database")
            #expect(try await Self.open(turn, f).taken == nil)
            let missing = TurnEnvelope(kind: .message, sessionID: UUID(), userID: "alice", content: "?", gatewayID: "g")
            let none = try await Self.open(missing, f)
            #expect(none.start.session == nil && none.taken == nil)
            // The worker's fallback, the ledger's claim, enters it and grants it.
            #expect(try await f.ledger.claim(turn, attempt: LedgerAttempt(), holdFor: .seconds(10)) == .granted(attemptNumber: 1))
        }
    }
}
