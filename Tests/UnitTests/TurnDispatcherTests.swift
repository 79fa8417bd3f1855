import AMQPClient
import Foundation
import Logging
import ParleySupport
import ParleyTestSupport
import Synchronization
import Testing

@testable import Gateway
@testable import Shared

/// Fails the first publishes with the given errors, then confirms.
final class ScriptedTurnPublisher: TurnPublishing {
    let failures: Mutex<[AMQPError]>
    let published = Mutex<[TurnEnvelope]>([])

    init(failing failures: [AMQPError]) {
        self.failures = Mutex(failures)
    }

    let cancels = Mutex<[UUID]>([])
    /// When set, every publish waits for it to open (a broker slow to answer).
    let hold = Mutex<Gate?>(nil)

    func publish(_ turn: TurnEnvelope) async throws(AMQPError) {
        published.withLock { $0.append(turn) }
        if let gate = hold.withLock({ $0 }) { await gate.wait() }
        if let failure = failures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { throw failure }
    }

    func cancel(turnID: UUID, sessionID: UUID) async throws(AMQPError) {
        cancels.withLock { $0.append(turnID) }
    }
}

@Suite("Turn dispatcher")
struct TurnDispatcherTests {
    let session = UUID()

    func setUp(
        _ publisher: ScriptedTurnPublisher,
        doubt: Duration = .seconds(5),
        ledger: any TurnLedger = InMemoryTurnLedger()
    ) -> (TurnDispatcher, PendingTurn) {
        let socket = FrameOutbox(userID: "alice", capacity: 50, logger: Logger(label: "test"))
        let turn = PendingTurn(
            envelope: TurnEnvelope(kind: .message, sessionID: session, userID: "alice", content: "oi", clientMessageID: "c1", gatewayID: "g"),
            origin: socket
        )
        var dispatcher = TurnDispatcher(publisher: publisher, ledger: ledger, turnLifetime: .seconds(50), logger: Logger(label: "test"))
        dispatcher.doubtResolutionTime = doubt
        return (dispatcher, turn)
    }

    @Test func anUnconfirmedPublishIsRepeatedWithTheSameTurnUntilConfirmed() async throws {
        let publisher = ScriptedTurnPublisher(failing: [.confirmTimeout(exchange: "t", seconds: 10), .notConnected("reconnecting")])
        let (dispatcher, turn) = setUp(publisher)
        #expect(await dispatcher.publish(turn).label == "confirmed")
        let attempts = publisher.published.withLock { $0 }
        #expect(attempts.count == 3)
        #expect(Set(attempts.map(\.turnID)) == [turn.envelope.turnID])
        // Each publish a copy of its own, every one with the turn's deadline.
        #expect(Set(attempts.map(\.copyID)).count == 3)
        #expect(attempts.allSatisfy { $0.deadline != nil })
    }

    @Test func aRefusedPublishIsReportedAtOnce() async throws {
        let publisher = ScriptedTurnPublisher(failing: [.nacked(exchange: "t", routingKey: "turn")])
        let (dispatcher, turn) = setUp(publisher)
        #expect(await dispatcher.publish(turn).label == "refused")
        #expect(publisher.published.withLock { $0.count } == 1)
    }

    @Test func aPublishThatStaysUnconfirmedIsReportedAsUncertain() async throws {
        let failures = Array(repeating: AMQPError.connectionLost("gone"), count: 100)
        let (dispatcher, turn) = setUp(ScriptedTurnPublisher(failing: failures), doubt: .milliseconds(300))
        #expect(await dispatcher.publish(turn).label == "uncertain")
    }

    @Test func aTurnTakesItsPlaceInTheSessionsOrderBeforeItIsPublished() async throws {
        let ledger = InMemoryTurnLedger()
        let (dispatcher, turn) = setUp(ScriptedTurnPublisher(failing: []), ledger: ledger)
        _ = await dispatcher.publish(turn)
        let entry = try #require(ledger.entry(turn.envelope.turnID))
        #expect(entry.state == .queued && entry.seq == 1)
        #expect(abs(entry.deadline.timeIntervalSince(Date().addingTimeInterval(50))) < 5)
    }

    @Test func aTurnTheBrokerRefusedIsWithdrawnSoTheNextOneNeedNotWait() async throws {
        let ledger = InMemoryTurnLedger()
        let (dispatcher, turn) = setUp(ScriptedTurnPublisher(failing: [.nacked(exchange: "t", routingKey: "turn")]), ledger: ledger)
        _ = await dispatcher.publish(turn)
        #expect(ledger.entry(turn.envelope.turnID)?.state == .withdrawn)
    }

    @Test func aTurnIsStillPublishedWhenTheLedgerIsDown() async throws {
        let publisher = ScriptedTurnPublisher(failing: [])
        let (dispatcher, turn) = setUp(publisher, ledger: FailingLedger())
        #expect(await dispatcher.publish(turn).label == "confirmed")
        #expect(publisher.published.withLock { $0.count } == 1)
    }

    @Test func theTurnDeadlineComesBeforeTheReplyTimeout() throws {
        let settings = try GatewaySettings(
            environment: EnvironmentReader(["PARLEY_AUTH": "off", "GATEWAY_HOST": "127.0.0.1", "REPLY_TIMEOUT_SECONDS": "180"])
        )
        #expect(settings.turnLifetime == .seconds(170))
        let short = try GatewaySettings(
            environment: EnvironmentReader(["PARLEY_AUTH": "off", "GATEWAY_HOST": "127.0.0.1", "REPLY_TIMEOUT_SECONDS": "8"])
        )
        #expect(short.turnLifetime == .seconds(4))
    }
}

/// A ledger whose database is down.
struct FailingLedger: TurnLedger {
    func register(_ turn: TurnEnvelope) async throws(StoreError) { throw .unavailable("down") }
    func withdraw(_ turn: TurnEnvelope) async throws(StoreError) { throw .unavailable("down") }
    func claim(_ turn: TurnEnvelope, attempt: LedgerAttempt, holdFor: Duration) async throws(StoreError) -> TurnClaim { throw .unavailable("down") }
    func renew(turnID: UUID, attempt: LedgerAttempt, holdFor: Duration) async throws(StoreError) -> Bool { throw .unavailable("down") }
    func settle(turnID: UUID, attempt: LedgerAttempt, as state: TurnLedgerState, failure: SettledFailure?) async throws(StoreError) -> Bool {
        throw .unavailable("down")
    }
    func release(turnID: UUID, attempt: LedgerAttempt) async throws(StoreError) { throw .unavailable("down") }
}
