import Foundation
import Shared

/// One session's turns in order, as a value: at most one turn is in the broker at a
/// time, the next is published only when the previous one is answered (or refused,
/// or timed out), and the turns sent meanwhile wait here, in order. Workers
/// therefore never race on one session, whatever their number.
///
/// A pure state machine: each event (a turn submitted, the broker's answer to a
/// publish, a reply, the clock) is a `mutating` call that returns the actions to
/// perform — publish a turn, send a frame, count something. `TurnPipeline` performs
/// them; the tests call the machine directly.
struct SessionTurnQueue {
    enum Action {
        /// Hand the turn to the broker, then report with `published(_:outcome:now:)`.
        case publish(PendingTurn)
        /// A frame for one listener: the turn's origin.
        case send(ServerFrame, to: FrameOutbox)
        /// A frame for every listener of the session.
        case broadcast(ServerFrame)
        /// Something to count or log; changes nothing.
        case note(Note)
    }

    enum Note: Equatable {
        case firstDelta(after: Duration)
        case answered(after: Duration)
        /// A turn ended in an error that this gateway counts (it is the turn's gateway).
        case failed(code: ErrorCode)
        /// A reply frame went to the listeners; `kind` is its envelope's.
        case delivered(kind: String)
        case duplicateDropped(turnID: UUID)
        case timedOut(turnID: UUID)
    }

    private struct InFlight {
        var turn: PendingTurn
        var published = false
        /// When it was handed to the broker (it becomes current just before): the
        /// start of the turn's latency, also when its reply overtakes the confirm.
        let sentAt: ContinuousClock.Instant
        var sentFirstDelta = false
        var deadline: ContinuousClock.Instant?
        /// A reply that overtook the broker's confirm of its own turn.
        var earlyReply: ReplyEnvelope?
        /// Deltas and resets that overtook it (bounded: the reply repeats them).
        var earlyStream: [ReplyEnvelope] = []
    }

    /// The most deltas and resets held for a turn whose confirm has not come yet.
    static let earlyStreamLimit = 256
    /// How many answered turn ids are remembered, to drop redelivered duplicates.
    static let answeredMemory = 64

    let maxWaiting: Int
    let replyTimeout: Duration
    private var waiting: [PendingTurn] = []
    private var current: InFlight?
    /// Final replies already delivered, newest last.
    private var answered: [UUID] = []
    /// A reply said the learner completed the topic: no more turns.
    private(set) var isCompleted = false

    init(maxWaiting: Int, replyTimeout: Duration) {
        self.maxWaiting = maxWaiting
        self.replyTimeout = replyTimeout
    }

    /// No turn is being published or answered.
    var isIdle: Bool { current == nil }

    /// The turn in the broker or with a worker, once the broker took it.
    var turnInFlight: UUID? {
        guard let current, current.published else { return nil }
        return current.turn.turnID
    }

    // MARK: Events

    /// A listener sends a turn: it is published at once when the session is free,
    /// or waits behind the turn in flight.
    mutating func submit(_ turn: PendingTurn, now: ContinuousClock.Instant) throws(ClientError) -> Action? {
        guard !isCompleted else { throw .sessionCompleted(turn.envelope) }
        guard current != nil else {
            current = InFlight(turn: turn, sentAt: now)
            return .publish(turn)
        }
        guard waiting.count < maxWaiting else { throw .tooManyPending(turn.envelope, limit: maxWaiting) }
        waiting.append(turn)
        return nil
    }

    /// The broker's answer to the publish of the current turn.
    mutating func published(_ turnID: UUID, outcome: PublishOutcome, now: ContinuousClock.Instant) -> [Action] {
        guard var current, current.turn.turnID == turnID else { return [] }
        let turn = current.turn
        var actions: [Action] = []
        switch outcome {
        case .refused(let error):
            let refusal = error.clientRefusal
            return [.send(.turnRefused(turn.envelope, refusal), to: turn.origin), .note(.failed(code: refusal.code))] + advance(now: now)
        case .uncertain where current.earlyReply != nil, .confirmed:
            if turn.announcesAcceptance { actions.append(.send(.accepted(turn.envelope), to: turn.origin)) }
        case .uncertain:
            // It may be in the queue: keep the session blocked until its reply or the
            // reply timeout, so that a later turn cannot overtake it.
            actions.append(.send(.unconfirmed(turn.envelope), to: turn.origin))
        }
        current.published = true
        current.deadline = now.advanced(by: replyTimeout)
        let (early, earlyStream) = (current.earlyReply, current.earlyStream)
        current.earlyReply = nil
        current.earlyStream = []
        self.current = current
        for envelope in earlyStream { actions += deliver(envelope, now: now) }
        if let early { actions += deliver(early, now: now) }
        return actions
    }

    /// A reply envelope from the broker, for every listener of the session.
    mutating func deliver(_ reply: ReplyEnvelope, now: ContinuousClock.Instant) -> [Action] {
        let isCurrent = current?.turn.turnID == reply.turnID
        if isCurrent, current?.published == false {
            // The reply overtook the confirm of its own turn: hold it until the
            // client has seen `accepted`.
            if reply.isFinal {
                current?.earlyReply = reply
            } else if (current?.earlyStream.count ?? 0) < Self.earlyStreamLimit {
                current?.earlyStream.append(reply)
            }
            return []
        }
        if answered.contains(reply.turnID) {
            // A late delta or reset of an answered turn (a superseded attempt's), or a
            // redelivered duplicate of its reply.
            return reply.isFinal ? [.note(.duplicateDropped(turnID: reply.turnID))] : []
        }
        switch reply {
        case .delta(let delta):
            var actions: [Action] = [.broadcast(.delta(delta)), .note(.delivered(kind: "delta"))]
            if isCurrent, let sentAt = current?.sentAt, current?.sentFirstDelta == false {
                current?.sentFirstDelta = true
                actions.append(.note(.firstDelta(after: sentAt.duration(to: now))))
            }
            return actions
        case .reset(let reset):
            return [.broadcast(.reset(reset)), .note(.delivered(kind: "reset"))]
        case .done(let done):
            var actions: [Action] = [.broadcast(.reply(done)), .note(.delivered(kind: "done"))]
            if isCurrent, let sentAt = current?.sentAt { actions.append(.note(.answered(after: sentAt.duration(to: now)))) }
            if done.completed { actions += complete() }
            return actions + finish(reply.turnID, isCurrent: isCurrent, now: now)
        case .error(let failure):
            var actions: [Action] = [.note(.delivered(kind: "error"))]
            // Counted once, by the gateway whose turn it is (other gateways with
            // listeners of the session see the error too).
            if isCurrent { actions.append(.note(.failed(code: failure.code))) }
            let clientMessageID = isCurrent ? current?.turn.envelope.clientMessageID : nil
            actions.append(.broadcast(.replyFailed(failure, clientMessageID: clientMessageID)))
            return actions + finish(reply.turnID, isCurrent: isCurrent, now: now)
        }
    }

    /// The clock: a turn whose reply did not come by its deadline ends with
    /// `reply_timeout`, and the session moves on. Its reply, if it comes late, still
    /// reaches the listeners.
    mutating func expire(now: ContinuousClock.Instant) -> [Action] {
        guard let current, let deadline = current.deadline, deadline <= now else { return [] }
        let envelope = current.turn.envelope
        return [.note(.timedOut(turnID: envelope.turnID)), .note(.failed(code: .replyTimeout)), .broadcast(.replyTimedOut(envelope))]
            + advance(now: now)
    }

    /// Drops a turn that still waits (it never reached the broker). Returns the notice
    /// for its origin; nil when the turn is not waiting here.
    mutating func withdraw(_ turnID: UUID) -> Action? {
        guard let index = waiting.firstIndex(where: { $0.turnID == turnID }) else { return nil }
        let turn = waiting.remove(at: index)
        return .send(.cancelledWhileWaiting(turn.envelope), to: turn.origin)
    }

    /// Whether `turnID` is the session's current turn (being published or answered).
    func isCurrent(_ turnID: UUID) -> Bool {
        current?.turn.turnID == turnID
    }

    /// A listener left: its waiting turns go with it (they were never accepted).
    mutating func dropTurns(from listener: UUID) {
        waiting.removeAll { $0.origin.id == listener }
    }

    /// The topic is completed: turns still waiting will not be answered.
    mutating func complete() -> [Action] {
        isCompleted = true
        defer { waiting = [] }
        return waiting.map { .send(.completedBeforeSent($0.envelope), to: $0.origin) }
    }

    // MARK: Steps

    /// A final reply (or failure) arrived: remembered as answered, and when it was the
    /// current turn's, the session moves on.
    private mutating func finish(_ turnID: UUID, isCurrent: Bool, now: ContinuousClock.Instant) -> [Action] {
        answered.append(turnID)
        if answered.count > Self.answeredMemory { answered.removeFirst(answered.count - Self.answeredMemory) }
        return isCurrent ? advance(now: now) : []
    }

    /// Ends the current turn; the next waiting one becomes current and is published.
    private mutating func advance(now: ContinuousClock.Instant) -> [Action] {
        current = nil
        guard !waiting.isEmpty else { return [] }
        let next = waiting.removeFirst()
        current = InFlight(turn: next, sentAt: now)
        return [.publish(next)]
    }
}
