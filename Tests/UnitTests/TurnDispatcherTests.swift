import Foundation
import Logging
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
        _ publisher: ScriptedTurnPublisher, doubt: Duration = .seconds(5), ledger: any TurnLedger = InMemoryTurnLedger()
    ) async throws -> (TurnDispatcher, SessionHub, SocketOutbox, PendingTurn) {
        let hub = SessionHub(subscriptions: RecordingSubscriptions(), maxWaitingTurns: 4, replyTimeout: .seconds(60), logger: Logger(label: "test"))
        let socket = SocketOutbox(userID: "alice", capacity: 50, logger: Logger(label: "test"))
        try await hub.attach(socket, to: session)
        let turn = PendingTurn(
            envelope: TurnEnvelope(kind: .message, sessionID: session, userID: "alice", content: "oi", clientMessageID: "c1", gatewayID: "g"),
            origin: socket
        )
        _ = try await hub.submit(turn)
        var dispatcher = TurnDispatcher(hub: hub, publisher: publisher, ledger: ledger, turnLifetime: .seconds(50), logger: Logger(label: "test"))
        dispatcher.doubtResolutionTime = doubt
        return (dispatcher, hub, socket, turn)
    }

    func frameTypes(_ socket: SocketOutbox) async -> [String] {
        socket.finish()
        var types: [String] = []
        for await frame in socket.frames {
            let text = frame.text
            let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
            types.append([json["type"] as? String, json["code"] as? String].compactMap { $0 }.joined(separator: "/"))
        }
        return types
    }

    @Test func anUnconfirmedPublishIsRepeatedWithTheSameTurnUntilConfirmed() async throws {
        let publisher = ScriptedTurnPublisher(failing: [.confirmTimeout(exchange: "t", seconds: 10), .notConnected("reconnecting")])
        let (dispatcher, _, socket, turn) = try await setUp(publisher)
        await dispatcher.publish(startingWith: turn)
        let attempts = publisher.published.withLock { $0 }
        #expect(attempts.count == 3)
        #expect(Set(attempts.map(\.turnID)) == [turn.envelope.turnID])
        #expect(attempts.allSatisfy { $0.deadline != nil })
        #expect(await frameTypes(socket) == ["accepted"])
    }

    @Test func aRefusedPublishIsReportedAtOnce() async throws {
        let publisher = ScriptedTurnPublisher(failing: [.nacked(exchange: "t", routingKey: "turn")])
        let (dispatcher, _, socket, turn) = try await setUp(publisher)
        await dispatcher.publish(startingWith: turn)
        #expect(publisher.published.withLock { $0.count } == 1)
        #expect(await frameTypes(socket) == ["error/overloaded"])
    }

    @Test func aPublishThatStaysUnconfirmedIsReportedAsUncertain() async throws {
        let failures = Array(repeating: AMQPError.connectionLost("gone"), count: 100)
        let (dispatcher, _, socket, turn) = try await setUp(ScriptedTurnPublisher(failing: failures), doubt: .milliseconds(300))
        await dispatcher.publish(startingWith: turn)
        #expect(await frameTypes(socket) == ["error/unconfirmed"])
    }

    @Test func aTurnTakesItsPlaceInTheSessionsOrderBeforeItIsPublished() async throws {
        let ledger = InMemoryTurnLedger()
        let (dispatcher, _, _, turn) = try await setUp(ScriptedTurnPublisher(failing: []), ledger: ledger)
        await dispatcher.publish(startingWith: turn)
        let entry = try #require(ledger.entry(turn.envelope.turnID))
        #expect(entry.state == .queued && entry.seq == 1)
        #expect(abs(entry.deadline.timeIntervalSince(Date().addingTimeInterval(50))) < 5)
    }

    @Test func aTurnTheBrokerRefusedIsWithdrawnSoTheNextOneNeedNotWait() async throws {
        let ledger = InMemoryTurnLedger()
        let (dispatcher, _, _, turn) = try await setUp(ScriptedTurnPublisher(failing: [.nacked(exchange: "t", routingKey: "turn")]), ledger: ledger)
        await dispatcher.publish(startingWith: turn)
        #expect(ledger.entry(turn.envelope.turnID)?.state == .withdrawn)
    }

    @Test func aTurnIsStillAcceptedWhenTheLedgerIsDown() async throws {
        let publisher = ScriptedTurnPublisher(failing: [])
        let (dispatcher, _, socket, turn) = try await setUp(publisher, ledger: FailingLedger())
        await dispatcher.publish(startingWith: turn)
        #expect(publisher.published.withLock { $0.count } == 1)
        #expect(await frameTypes(socket) == ["accepted"])
    }

    @Test func theTurnDeadlineComesBeforeTheReplyTimeout() throws {
        let settings = try GatewaySettings(environment: EnvironmentReader(["PARLEY_AUTH": "off", "GATEWAY_HOST": "127.0.0.1", "REPLY_TIMEOUT_SECONDS": "180"]))
        #expect(settings.turnLifetime == .seconds(170))
        let short = try GatewaySettings(environment: EnvironmentReader(["PARLEY_AUTH": "off", "GATEWAY_HOST": "127.0.0.1", "REPLY_TIMEOUT_SECONDS": "8"]))
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
