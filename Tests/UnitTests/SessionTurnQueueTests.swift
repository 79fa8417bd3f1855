import Foundation
import Logging
import Testing

@testable import Gateway
@testable import Shared

/// The per-session order as a value: events in, actions out. No actor, no broker.
@Suite("Session turn queue")
struct SessionTurnQueueTests {
    let session = UUID()
    let start = ContinuousClock.now
    let alice = FrameOutbox(userID: "alice", capacity: 100, logger: Logger(label: "test"))
    let bob = FrameOutbox(userID: "alice", capacity: 100, logger: Logger(label: "test"))

    func queue(maxWaiting: Int = 2) -> SessionTurnQueue {
        SessionTurnQueue(maxWaiting: maxWaiting, replyTimeout: .seconds(30))
    }

    func turn(_ content: String, from origin: FrameOutbox? = nil) -> PendingTurn {
        PendingTurn(
            envelope: TurnEnvelope(kind: .message, sessionID: session, userID: "alice", content: content, clientMessageID: content, gatewayID: "g"),
            origin: origin ?? alice
        )
    }

    func done(_ turn: PendingTurn, completed: Bool = false) -> ReplyEnvelope {
        .done(
            .init(
                sessionID: session,
                turnID: turn.turnID,
                message: .init(id: 1, role: .assistant, content: "re \(turn.envelope.content)", timestamp: Date()),
                status: completed ? "completed" : "active",
                completed: completed,
                usage: .init()
            )
        )
    }

    func delta(_ turn: PendingTurn, _ index: Int) -> ReplyEnvelope {
        .delta(.init(sessionID: session, turnID: turn.turnID, index: index, text: "t\(index)"))
    }

    func at(_ seconds: Int) -> ContinuousClock.Instant { start.advanced(by: .seconds(seconds)) }

    /// Actions as short words: `publish:one`, `send:accepted:one`, `broadcast:error/reply_timeout`,
    /// `note:failed(reply_timeout)`; a frame for a turn is named by its client_msg_id.
    func words(_ actions: [SessionTurnQueue.Action], notes: Bool = false) -> [String] {
        actions.compactMap { action in
            switch action {
            case .publish(let turn): "publish:\(turn.envelope.content)"
            case .send(let frame, let origin): "send\(origin === bob ? "(bob)" : ""):\(describe(frame))"
            case .broadcast(let frame): "broadcast:\(describe(frame))"
            case .note(let note): notes ? "note:\(note)" : nil
            }
        }
    }

    func describe(_ frame: ServerFrame) -> String {
        let json = (try? JSONSerialization.jsonObject(with: Data(frame.text.utf8)) as? [String: Any]) ?? [:]
        let type = [json["type"] as? String, json["code"] as? String].compactMap { $0 }.joined(separator: "/")
        return [type, json["client_msg_id"] as? String].compactMap { $0 }.joined(separator: ":")
    }

    @Test func aSessionHasOneTurnInFlightAndTheRestWaitInOrder() throws {
        var turns = queue()
        let (one, two, three) = (turn("one"), turn("two"), turn("three"))
        #expect(words(try turns.submit(one, now: at(0)).map { [$0] } ?? []) == ["publish:one"])
        #expect(try turns.submit(two, now: at(0)) == nil)
        #expect(try turns.submit(three, now: at(0)) == nil)
        #expect(words(turns.published(one.turnID, outcome: .confirmed, now: at(0))) == ["send:accepted:one"])
        #expect(words(turns.deliver(done(one), now: at(1))) == ["broadcast:reply", "publish:two"])
        #expect(words(turns.published(two.turnID, outcome: .confirmed, now: at(1))) == ["send:accepted:two"])
        #expect(words(turns.deliver(done(two), now: at(2))) == ["broadcast:reply", "publish:three"])
        #expect(words(turns.deliver(done(three), now: at(3))).isEmpty)  // not published yet: held
        #expect(words(turns.published(three.turnID, outcome: .confirmed, now: at(3))) == ["send:accepted:three", "broadcast:reply"])
        #expect(turns.isIdle)
    }

    @Test func tooManyWaitingTurnsAreRefused() throws {
        var turns = queue(maxWaiting: 2)
        for content in ["1", "2", "3"] { _ = try turns.submit(turn(content), now: at(0)) }
        do {
            _ = try turns.submit(turn("4"), now: at(0))
            Issue.record("a fourth turn was taken")
        } catch {
            #expect(error.code == .tooManyPending && error.clientMessageID == "4")
        }
    }

    /// A delta or reset after its turn's reply (a late or superseded attempt) would
    /// repaint an answered message; a redelivered reply would answer twice: dropped.
    @Test func envelopesOfAnAnsweredTurnAreDropped() throws {
        var turns = queue()
        let one = turn("one")
        _ = try turns.submit(one, now: at(0))
        _ = turns.published(one.turnID, outcome: .confirmed, now: at(0))
        #expect(words(turns.deliver(delta(one, 0), now: at(0))) == ["broadcast:delta"])
        #expect(words(turns.deliver(done(one), now: at(1))) == ["broadcast:reply"])
        #expect(words(turns.deliver(delta(one, 1), now: at(1))).isEmpty)
        #expect(words(turns.deliver(.reset(.init(sessionID: session, turnID: one.turnID, reason: "late")), now: at(1))).isEmpty)
        #expect(words(turns.deliver(done(one), now: at(2)), notes: true) == ["note:duplicateDropped(turnID: \(one.turnID))"])
    }

    @Test func aReplyThatOvertakesItsConfirmWaitsForAccepted() throws {
        var turns = queue()
        let (fast, next) = (turn("fast"), turn("next"))
        _ = try turns.submit(fast, now: at(0))
        _ = try turns.submit(next, now: at(0))
        #expect(words(turns.deliver(delta(fast, 0), now: at(0))).isEmpty)
        #expect(words(turns.deliver(done(fast), now: at(0))).isEmpty)
        #expect(
            words(turns.published(fast.turnID, outcome: .confirmed, now: at(0))) == [
                "send:accepted:fast", "broadcast:delta", "broadcast:reply", "publish:next",
            ]
        )
    }

    @Test func aRefusedPublishTellsTheSenderAndFreesTheSession() throws {
        var turns = queue()
        let (a, b) = (turn("a"), turn("b"))
        _ = try turns.submit(a, now: at(0))
        _ = try turns.submit(b, now: at(0))
        #expect(
            words(turns.published(a.turnID, outcome: .refused(.nacked(exchange: "x", routingKey: "y")), now: at(0))) == [
                "send:error/overloaded:a", "publish:b",
            ]
        )
        #expect(
            words(turns.published(b.turnID, outcome: .refused(.notConnected("down")), now: at(0)), notes: true) == [
                "send:error/unavailable:b", "note:failed(code: Shared.ErrorCode.unavailable)",
            ]
        )
        #expect(turns.isIdle)
    }

    @Test func anOverdueTurnIsReportedAndTheSessionMovesOnAndItsLateReplyIsShownOnce() throws {
        var turns = queue()
        let (slow, next) = (turn("slow"), turn("next"))
        _ = try turns.submit(slow, now: at(0))
        _ = try turns.submit(next, now: at(0))
        _ = turns.published(slow.turnID, outcome: .confirmed, now: at(0))
        #expect(turns.expire(now: at(29)).isEmpty)
        #expect(words(turns.expire(now: at(30))) == ["broadcast:error/reply_timeout:slow", "publish:next"])
        #expect(words(turns.deliver(done(slow), now: at(31))) == ["broadcast:reply"])
        #expect(words(turns.deliver(done(slow), now: at(31))).isEmpty)
        #expect(turns.expire(now: at(100)).isEmpty)  // `next` is not published yet: no deadline
    }

    @Test func anUnconfirmedTurnKeepsTheSessionBlockedUntilItsReply() throws {
        var turns = queue()
        let (maybe, next) = (turn("maybe"), turn("next"))
        _ = try turns.submit(maybe, now: at(0))
        _ = try turns.submit(next, now: at(0))
        #expect(
            words(turns.published(maybe.turnID, outcome: .uncertain(.confirmTimeout(exchange: "x", seconds: 10)), now: at(0))) == [
                "send:error/unconfirmed:maybe"
            ]
        )
        #expect(turns.turnInFlight == maybe.turnID)
        // It did reach the queue after all: its reply arrives and frees the session.
        #expect(words(turns.deliver(done(maybe), now: at(1))) == ["broadcast:reply", "publish:next"])
    }

    @Test func anUnconfirmedTurnWhoseReplyCameIsAccepted() throws {
        var turns = queue()
        let fast = turn("fast")
        _ = try turns.submit(fast, now: at(0))
        _ = turns.deliver(done(fast), now: at(0))
        #expect(
            words(turns.published(fast.turnID, outcome: .uncertain(.connectionLost("gone")), now: at(0))) == [
                "send:accepted:fast", "broadcast:reply",
            ]
        )
    }

    /// A session's opening is not announced: the client sent no message for it.
    @Test func anOpeningIsNotAnnounced() throws {
        var turns = queue()
        let opening = PendingTurn(
            envelope: TurnEnvelope(kind: .start, sessionID: session, userID: "alice", content: "", gatewayID: "g"),
            origin: alice
        )
        _ = try turns.submit(opening, now: at(0))
        #expect(words(turns.published(opening.turnID, outcome: .confirmed, now: at(0))).isEmpty)
    }

    @Test func aCompletedTopicEndsTheWaitingTurnsAndRefusesNewOnes() throws {
        var turns = queue()
        let (last, extra) = (turn("last"), turn("extra"))
        _ = try turns.submit(last, now: at(0))
        _ = try turns.submit(extra, now: at(0))
        _ = turns.published(last.turnID, outcome: .confirmed, now: at(0))
        #expect(words(turns.deliver(done(last, completed: true), now: at(1))) == ["broadcast:reply", "send:error/session_completed:extra"])
        #expect(turns.isCompleted && turns.isIdle)
        #expect(throws: ClientError.self) { _ = try turns.submit(turn("more"), now: at(2)) }
    }

    @Test func onlyAWaitingTurnCanBeWithdrawn() throws {
        var turns = queue()
        let (first, second) = (turn("first"), turn("second"))
        _ = try turns.submit(first, now: at(0))
        _ = try turns.submit(second, now: at(0))
        #expect(turns.withdraw(first.turnID) == nil)
        #expect(turns.isCurrent(first.turnID))
        #expect(words(turns.withdraw(second.turnID).map { [$0] } ?? []) == ["send:error/cancelled:second"])
        _ = turns.published(first.turnID, outcome: .confirmed, now: at(0))
        #expect(words(turns.deliver(done(first), now: at(1))) == ["broadcast:reply"])  // nothing next
    }

    @Test func aListenerThatLeavesTakesItsWaitingTurnsAlong() throws {
        var turns = queue(maxWaiting: 4)
        let (mine, bobs, mineToo) = (turn("mine"), turn("bobs", from: bob), turn("mine too"))
        _ = try turns.submit(turn("current"), now: at(0))
        for waiting in [mine, bobs, mineToo] { _ = try turns.submit(waiting, now: at(0)) }
        turns.dropTurns(from: alice.id)
        #expect(turns.withdraw(mine.turnID) == nil && turns.withdraw(mineToo.turnID) == nil)
        #expect(words(turns.withdraw(bobs.turnID).map { [$0] } ?? []) == ["send(bob):error/cancelled:bobs"])
    }

    /// Latency and first-delta times are measured from the publish; errors are counted
    /// only by the gateway whose turn it is.
    @Test func measurementsBelongToTheCurrentTurn() throws {
        var turns = queue()
        let one = turn("one")
        _ = try turns.submit(one, now: at(0))
        _ = turns.published(one.turnID, outcome: .confirmed, now: at(0))
        let first = words(turns.deliver(delta(one, 0), now: at(2)), notes: true)
        let second = words(turns.deliver(delta(one, 1), now: at(3)), notes: true)
        #expect(first.contains("note:firstDelta(after: 2.0 seconds)") && !second.contains { $0.contains("firstDelta") })
        #expect(words(turns.deliver(done(one), now: at(5)), notes: true).contains("note:answered(after: 5.0 seconds)"))
        // Another gateway's turn failing in this session: shown, not counted here.
        let foreign = ReplyEnvelope.error(.init(sessionID: session, turnID: UUID(), code: .llmUnavailable, message: "down"))
        #expect(words(turns.deliver(foreign, now: at(6)), notes: true) == ["note:delivered(kind: \"error\")", "broadcast:error/llm_unavailable"])
    }
}
