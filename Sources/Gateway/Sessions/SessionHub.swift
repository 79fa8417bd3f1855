import Foundation
import Logging
import Shared

/// A turn a socket (or a REST request) sent, not yet answered.
struct PendingTurn: Sendable {
    var envelope: TurnEnvelope
    var origin: SocketOutbox
    /// Whether the origin hears `accepted` when the broker confirmed the turn. A
    /// WebSocket client sent no message for a session's opening, so hears none then.
    var announcesAcceptance: Bool

    init(envelope: TurnEnvelope, origin: SocketOutbox, announcesAcceptance: Bool? = nil) {
        self.envelope = envelope
        self.origin = origin
        self.announcesAcceptance = announcesAcceptance ?? (envelope.kind == .message)
    }
}

/// How the broker took a turn.
enum PublishOutcome: Sendable {
    /// Confirmed: the turn is in the queue.
    case confirmed
    /// Certainly not in the queue (nacked, unroutable, no connection).
    case refused(AMQPError)
    /// Written, but never confirmed: it may or may not be in the queue.
    case uncertain(AMQPError)
}

/// The gateway's sessions: which sockets hold each session (fan-out), and each
/// session's turns in order.
///
/// **Order.** A session has at most one turn in the broker at a time: the next turn
/// is published only when the previous one is answered (or refused, or timed out).
/// Turns sent meanwhile wait here, in order, and are `accepted` when they are
/// published. Workers therefore never race on one session, whatever their number.
///
/// A session's entry (its turn in flight, the replies it has seen, its binding)
/// lives while a socket holds it *or* a turn of it is in flight, so a reconnecting
/// client cannot get a second turn into the broker next to the first.
///
/// The hub never publishes itself. Methods that free the session for its next turn
/// return that turn; the caller publishes it and reports back with
/// `published(_:outcome:)` (see `TurnDispatcher`).
actor SessionHub {
    private struct Session {
        var sockets: [UUID: SocketOutbox] = [:]
        var subscription: Subscription = .none
        var waiting: [PendingTurn] = []
        var current: InFlight?
        /// Final replies already delivered, newest last, to drop a redelivered duplicate.
        var answered: [UUID] = []
        /// A reply said the learner completed the topic: no more turns.
        var isCompleted = false

        var isIdle: Bool { sockets.isEmpty && current == nil }
    }

    private enum Subscription {
        case none
        case binding([CheckedContinuation<Result<Void, AMQPError>, Never>])
        case bound
        case unbinding([CheckedContinuation<Void, Never>])
    }

    private struct InFlight {
        var turn: PendingTurn
        var published = false
        /// When it was handed to the broker (it becomes current just before): the
        /// start of the turn's latency, also when its reply overtakes the confirm.
        let sentAt = ContinuousClock.now
        var sentFirstDelta = false
        var deadline: ContinuousClock.Instant?
        /// A reply that overtook the broker's confirm of its own turn.
        var earlyReply: ReplyEnvelope?
        /// Deltas and resets that overtook it (bounded: the reply repeats them).
        var earlyStream: [ReplyEnvelope] = []
    }

    private let subscriptions: any ReplySubscriptions
    private let maxWaitingTurns: Int
    private let replyTimeout: Duration
    private let logger: Logger
    private var sessions: [UUID: Session] = [:]

    init(subscriptions: any ReplySubscriptions, maxWaitingTurns: Int, replyTimeout: Duration, logger: Logger) {
        self.subscriptions = subscriptions
        self.maxWaitingTurns = maxWaitingTurns
        self.replyTimeout = replyTimeout
        self.logger = logger
    }

    // MARK: Sockets

    /// Adds a socket to a session; the first socket binds the session's replies to
    /// this gateway. Returns when replies of the session are routed here.
    func attach(_ socket: SocketOutbox, to sessionID: UUID) async throws(AMQPError) {
        while true {
            sessions[sessionID, default: Session()].sockets[socket.id] = socket
            switch sessions[sessionID]!.subscription {
            case .bound:
                return
            case .binding:
                let result = await withCheckedContinuation { continuation in
                    if case .binding(var waiters) = sessions[sessionID]?.subscription {
                        waiters.append(continuation)
                        sessions[sessionID]?.subscription = .binding(waiters)
                    } else {
                        continuation.resume(returning: .success(()))
                    }
                }
                if case .failure(let error) = result {
                    sessions[sessionID]?.sockets[socket.id] = nil
                    forgetIfAbandoned(sessionID)
                    throw error
                }
                return
            case .unbinding:
                // Let the unbind finish, then bind again (never both at once).
                await withCheckedContinuation { continuation in
                    if case .unbinding(var waiters) = sessions[sessionID]?.subscription {
                        waiters.append(continuation)
                        sessions[sessionID]?.subscription = .unbinding(waiters)
                    } else {
                        continuation.resume()
                    }
                }
            case .none:
                try await bind(sessionID, for: socket)
                return
            }
        }
    }

    private func bind(_ sessionID: UUID, for socket: SocketOutbox) async throws(AMQPError) {
        sessions[sessionID]?.subscription = .binding([])
        let result: Result<Void, AMQPError>
        do {
            try await subscriptions.subscribe(session: sessionID)
            result = .success(())
        } catch {
            result = .failure(error)
        }
        guard case .binding(let waiters) = sessions[sessionID]?.subscription else { return }
        if case .failure = result {
            sessions[sessionID]?.subscription = .none
            sessions[sessionID]?.sockets[socket.id] = nil
            forgetIfAbandoned(sessionID)
        } else {
            sessions[sessionID]?.subscription = .bound
        }
        waiters.forEach { $0.resume(returning: result) }
        try result.get()
    }

    /// Removes a socket from every session it was in, with the turns it had waiting
    /// (never accepted). A session left without sockets and without a turn in flight
    /// stops receiving replies.
    func detach(_ socket: SocketOutbox) async {
        let held = sessions.filter { $0.value.sockets[socket.id] != nil }.map(\.key)
        for sessionID in held {
            sessions[sessionID]?.sockets[socket.id] = nil
            sessions[sessionID]?.waiting.removeAll { $0.origin.id == socket.id }
        }
        for sessionID in held {
            await releaseIfIdle(sessionID)
        }
    }

    /// Forgets an unbound session that no socket holds and no turn needs (a failed
    /// bind, also when other sockets were waiting for it).
    private func forgetIfAbandoned(_ sessionID: UUID) {
        guard let session = sessions[sessionID], case .none = session.subscription, session.isIdle, session.waiting.isEmpty else { return }
        sessions[sessionID] = nil
    }

    /// Unbinds and forgets a session that no socket holds and no turn needs.
    private func releaseIfIdle(_ sessionID: UUID) async {
        guard let session = sessions[sessionID], session.isIdle, case .bound = session.subscription else { return }
        sessions[sessionID]?.subscription = .unbinding([])
        do {
            try await subscriptions.unsubscribe(session: sessionID)
        } catch {
            logger.warning("could not unbind a session", metadata: ["session_id": "\(sessionID.lowercased)", "error": "\(error)"])
        }
        guard case .unbinding(let waiters) = sessions[sessionID]?.subscription else { return }
        if waiters.isEmpty, sessions[sessionID]?.isIdle == true {
            sessions[sessionID] = nil
        } else {
            sessions[sessionID]?.subscription = .none
        }
        waiters.forEach { $0.resume() }
    }

    func socketCount(session sessionID: UUID) -> Int {
        sessions[sessionID]?.sockets.count ?? 0
    }

    func isTracking(session sessionID: UUID) -> Bool {
        sessions[sessionID] != nil
    }

    // MARK: Turns

    /// Queues a turn behind the session's turn in flight. Returns the turn when it
    /// may be published at once.
    func submit(_ turn: PendingTurn) throws(FrameError) -> PendingTurn? {
        let sessionID = turn.envelope.sessionID
        guard let session = sessions[sessionID], session.sockets[turn.origin.id] != nil else {
            throw FrameError(code: "session_not_open", message: "attach to the session before sending to it", clientMessageID: turn.envelope.clientMessageID)
        }
        guard !session.isCompleted else {
            throw FrameError(
                code: "session_completed", message: "session \(sessionID.lowercased) is completed and takes no more messages",
                clientMessageID: turn.envelope.clientMessageID
            )
        }
        if session.current == nil {
            sessions[sessionID]?.current = InFlight(turn: turn)
            return turn
        }
        guard session.waiting.count < maxWaitingTurns else {
            throw FrameError(
                code: "too_many_pending",
                message: "\(maxWaitingTurns) messages of this session are already waiting for the reply in progress; wait for it",
                clientMessageID: turn.envelope.clientMessageID
            )
        }
        sessions[sessionID]?.waiting.append(turn)
        return nil
    }

    /// Where a turn to cancel stands.
    enum CancelTarget: Equatable, Sendable {
        /// It was waiting here and is now dropped (it never reached the broker).
        case droppedWhileWaiting
        /// It is in the broker or with a worker: the workers must be told.
        case inFlight(sessionID: UUID)
        /// No such turn in a session this socket holds.
        case unknown
    }

    /// Cancels a turn of a session `socket` holds.
    func cancel(_ turnID: UUID, from socket: SocketOutbox) -> CancelTarget {
        for (sessionID, session) in sessions where session.sockets[socket.id] != nil {
            if session.current?.turn.envelope.turnID == turnID { return .inFlight(sessionID: sessionID) }
            if let index = session.waiting.firstIndex(where: { $0.envelope.turnID == turnID }) {
                let turn = sessions[sessionID]!.waiting.remove(at: index)
                turn.origin.send(
                    .error(
                        code: "cancelled", message: "the message was cancelled before it was sent to a worker",
                        context: .init(sessionID: sessionID, turnID: turnID, clientMessageID: turn.envelope.clientMessageID)
                    )
                )
                return .droppedWhileWaiting
            }
        }
        return .unknown
    }

    /// How the broker took the session's current turn. Returns the next turn to
    /// publish, if the session is free for it.
    func published(_ turn: PendingTurn, outcome: PublishOutcome) async -> PendingTurn? {
        let envelope = turn.envelope
        let sessionID = envelope.sessionID
        guard var current = sessions[sessionID]?.current, current.turn.envelope.turnID == envelope.turnID else {
            return nil
        }
        let context = ServerFrame.ErrorContext(sessionID: sessionID, turnID: envelope.turnID, clientMessageID: envelope.clientMessageID)
        switch outcome {
        case .refused(let error):
            let frame = error.clientFrame
            turn.origin.send(.error(code: frame.code, message: frame.message, context: context))
            ParleyMetrics.turnErrors.increment(by: 1, [("code", frame.code)])
            return await advance(sessionID)
        case .uncertain where current.earlyReply != nil, .confirmed:
            if turn.announcesAcceptance {
                turn.origin.send(.accepted(sessionID: sessionID, turnID: envelope.turnID, clientMessageID: envelope.clientMessageID))
            }
        case .uncertain:
            // It may be in the queue: keep the session blocked until its reply or the
            // reply timeout, so that a later turn cannot overtake it.
            turn.origin.send(
                .error(
                    code: "unconfirmed",
                    message: "the message broker did not confirm your message; it may still be answered (watch for turn_id) — sending it again may answer it twice",
                    context: context
                )
            )
        }
        current.published = true
        current.deadline = ContinuousClock.now.advanced(by: replyTimeout)
        let early = current.earlyReply
        let earlyStream = current.earlyStream
        current.earlyReply = nil
        current.earlyStream = []
        sessions[sessionID]?.current = current
        for envelope in earlyStream { _ = await deliver(envelope) }
        guard let early else { return nil }
        return await deliver(early)
    }

    /// A reply envelope from the broker: fan it out to every socket of the session.
    /// Returns the session's next turn when this reply ended the current one.
    func deliver(_ reply: ReplyEnvelope) async -> PendingTurn? {
        let sessionID = reply.sessionID
        guard let session = sessions[sessionID] else { return nil }
        let isCurrent = session.current?.turn.envelope.turnID == reply.turnID
        if isCurrent, session.current?.published == false {
            // The reply overtook the confirm of its own turn: hold it until the
            // client has seen `accepted`.
            if reply.isFinal {
                sessions[sessionID]?.current?.earlyReply = reply
            } else if (sessions[sessionID]?.current?.earlyStream.count ?? 0) < 256 {
                sessions[sessionID]?.current?.earlyStream.append(reply)
            }
            return nil
        }
        if !reply.isFinal, session.answered.contains(reply.turnID) {
            // A late delta or reset of an answered turn (a superseded attempt's).
            return nil
        }
        switch reply {
        case .delta(let delta):
            if isCurrent, session.current?.sentFirstDelta == false {
                sessions[sessionID]?.current?.sentFirstDelta = true
                if let sentAt = session.current?.sentAt { ParleyMetrics.timeToFirstDelta.record(sentAt.duration(to: .now)) }
            }
            broadcast(.delta(delta), in: sessionID)
            ParleyMetrics.repliesDelivered.increment(by: 1, [("kind", "delta")])
            return nil
        case .reset(let reset):
            broadcast(.reset(reset), in: sessionID)
            ParleyMetrics.repliesDelivered.increment(by: 1, [("kind", "reset")])
            return nil
        case .done(let done):
            guard !session.answered.contains(reply.turnID) else {
                logger.info("dropped a duplicate reply", metadata: ["session_id": "\(sessionID.lowercased)", "turn_id": "\(reply.turnID.lowercased)"])
                return nil
            }
            broadcast(.reply(done), in: sessionID)
            ParleyMetrics.repliesDelivered.increment(by: 1, [("kind", "done")])
            if isCurrent, let sentAt = session.current?.sentAt { ParleyMetrics.turnLatency.record(sentAt.duration(to: .now)) }
            if done.completed { completeSession(sessionID) }
        case .error(let failure):
            guard !session.answered.contains(reply.turnID) else { return nil }
            ParleyMetrics.repliesDelivered.increment(by: 1, [("kind", "error")])
            // Counted once, by the gateway whose turn it is (other gateways with sockets
            // of the session see the error too).
            if isCurrent { ParleyMetrics.turnErrors.increment(by: 1, [("code", ParleyMetrics.errorCodeLabel(failure.code))]) }
            let clientMessageID = isCurrent ? session.current?.turn.envelope.clientMessageID : nil
            broadcast(
                .error(code: failure.code, message: failure.message, context: .init(sessionID: sessionID, turnID: failure.turnID, clientMessageID: clientMessageID)),
                in: sessionID
            )
        }
        remember(answered: reply.turnID, in: sessionID)
        return isCurrent ? await advance(sessionID) : nil
    }

    /// The turns in the broker or with a worker now, by session.
    func turnsInFlight() -> [(sessionID: UUID, turnID: UUID)] {
        sessions.compactMap { sessionID, session in
            guard let current = session.current, current.published else { return nil }
            return (sessionID, current.turn.envelope.turnID)
        }
    }

    /// Ends turns whose reply did not come in time; returns the turns now free to publish.
    func expireOverdueTurns(now: ContinuousClock.Instant = .now) async -> [PendingTurn] {
        var next: [PendingTurn] = []
        let overdue = sessions.compactMap { sessionID, session -> UUID? in
            guard let deadline = session.current?.deadline, deadline <= now else { return nil }
            return sessionID
        }
        for sessionID in overdue {
            guard let envelope = sessions[sessionID]?.current?.turn.envelope else { continue }
            logger.warning("no reply in time", metadata: ["session_id": "\(sessionID.lowercased)", "turn_id": "\(envelope.turnID.lowercased)"])
            ParleyMetrics.turnErrors.increment(by: 1, [("code", "reply_timeout")])
            broadcast(
                .error(
                    code: "reply_timeout", message: "no reply arrived in time; the message was accepted and may still be answered later",
                    context: .init(sessionID: sessionID, turnID: envelope.turnID, clientMessageID: envelope.clientMessageID)
                ),
                in: sessionID
            )
            // Not remembered as answered: a late reply still reaches the sockets.
            if let turn = await advance(sessionID) { next.append(turn) }
        }
        return next
    }

    /// Ends the current turn; returns the next waiting one, or releases the session
    /// when nobody needs it any more.
    private func advance(_ sessionID: UUID) async -> PendingTurn? {
        sessions[sessionID]?.current = nil
        if let waiting = sessions[sessionID]?.waiting, !waiting.isEmpty {
            let next = sessions[sessionID]!.waiting.removeFirst()
            sessions[sessionID]?.current = InFlight(turn: next)
            return next
        }
        await releaseIfIdle(sessionID)
        return nil
    }

    /// The store says the session is completed (a socket opened it to read it): its
    /// turns are refused here rather than accepted and refused by a worker.
    func noteCompleted(_ sessionID: UUID) {
        completeSession(sessionID)
    }

    /// The topic is completed: turns still waiting will not be answered.
    private func completeSession(_ sessionID: UUID) {
        sessions[sessionID]?.isCompleted = true
        let waiting = sessions[sessionID]?.waiting ?? []
        sessions[sessionID]?.waiting = []
        for turn in waiting {
            turn.origin.send(
                .error(
                    code: "session_completed", message: "the session was completed before this message was sent; it was not answered",
                    context: .init(sessionID: sessionID, turnID: turn.envelope.turnID, clientMessageID: turn.envelope.clientMessageID)
                )
            )
        }
    }

    private func remember(answered turnID: UUID, in sessionID: UUID) {
        sessions[sessionID]?.answered.append(turnID)
        if let count = sessions[sessionID]?.answered.count, count > 64 {
            sessions[sessionID]?.answered.removeFirst(count - 64)
        }
    }

    private func broadcast(_ frame: ServerFrame, in sessionID: UUID) {
        sessions[sessionID]?.sockets.values.forEach { $0.send(frame) }
    }
}
