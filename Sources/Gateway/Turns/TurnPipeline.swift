import AMQPClient
import Foundation
import Logging
import ServiceLifecycle
import Shared

/// The gateway's turn pipeline: it takes the turns of its listeners (sockets and
/// waiting REST requests), publishes each session's turns in order through the
/// dispatcher, fans every reply out to the session's listeners, and ends turns
/// whose reply is overdue. It is the only place that publishes turns: callers
/// submit, deliver or expire, and the rest follows.
///
/// Each session's order is a `SessionTurnQueue` and its reply routing a
/// `ReplySubscription` — values whose transitions return what to do; this actor
/// holds them and performs those actions. A session's entry lives while a listener
/// holds it *or* a turn of it is in flight, so a reconnecting client cannot get a
/// second turn into the broker next to the first.
///
/// Publishing runs in child tasks of `run()`, a service that stops after the HTTP
/// server and the reply router: a turn released once it has stopped is refused
/// (`unavailable`), not handed to a publisher that no longer runs.
actor TurnPipeline: Service {
    private enum Wake {
        case bound
        case failed(AMQPError)
        case retry
    }

    private struct Session {
        var listeners: [UUID: FrameOutbox] = [:]
        var subscription = ReplySubscription<CheckedContinuation<Wake, Never>>()
        var turns: SessionTurnQueue

        var isIdle: Bool { listeners.isEmpty && turns.isIdle }
    }

    /// Where a turn to cancel stands.
    private enum CancelTarget {
        /// It was waiting here and is now dropped (it never reached the broker).
        case withdrawn
        /// It is in the broker or with a worker: the workers must be told.
        case inFlight(sessionID: UUID)
        /// No such turn in a session this listener holds.
        case unknown
    }

    private let subscriptions: any ReplySubscriptions
    private nonisolated let dispatcher: TurnDispatcher
    private let maxWaitingTurns: Int
    private let replyTimeout: Duration
    private let logger: Logger
    private var sessions: [UUID: Session] = [:]
    private nonisolated let publications: AsyncStream<PendingTurn>
    private nonisolated let publicationQueue: AsyncStream<PendingTurn>.Continuation

    init(subscriptions: any ReplySubscriptions, dispatcher: TurnDispatcher, maxWaitingTurns: Int, replyTimeout: Duration, logger: Logger) {
        self.subscriptions = subscriptions
        self.dispatcher = dispatcher
        self.maxWaitingTurns = maxWaitingTurns
        self.replyTimeout = replyTimeout
        self.logger = logger
        (publications, publicationQueue) = AsyncStream.makeStream(of: PendingTurn.self)
    }

    /// Publishes the turns the sessions release, each in a child task, until the
    /// gateway shuts down; then lets the publishes under way finish.
    nonisolated func run() async {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await turn in publications {
                    group.addTask {
                        let outcome = await self.dispatcher.publish(turn)
                        await self.published(turn, outcome: outcome)
                    }
                }
            }
        } onGracefulShutdown: {
            self.publicationQueue.finish()
        }
    }

    // MARK: Listeners

    /// Adds a listener to a session; the first binds the session's replies to this
    /// gateway. Returns when replies of the session are routed here.
    func attach(_ listener: FrameOutbox, to sessionID: UUID) async throws(AMQPError) {
        while true {
            sessions[sessionID, default: newSession()].listeners[listener.id] = listener
            switch sessions[sessionID]!.subscription.attach() {
            case .ready:
                return
            case .bind:
                try await bind(sessionID, for: listener)
                return
            case .wait:
                let wake = await withCheckedContinuation { continuation in
                    if sessions[sessionID]?.subscription.enqueue(continuation) != true { continuation.resume(returning: .retry) }
                }
                switch wake {
                case .bound:
                    return
                case .failed(let error):
                    sessions[sessionID]?.listeners[listener.id] = nil
                    forgetIfAbandoned(sessionID)
                    throw error
                case .retry:
                    continue
                }
            }
        }
    }

    /// Removes a listener from every session it was in, with the turns it had
    /// waiting (never accepted). A session left without listeners and without a turn
    /// in flight stops receiving replies.
    func detach(_ listener: FrameOutbox) async {
        let held = sessions.filter { $0.value.listeners[listener.id] != nil }.map(\.key)
        for sessionID in held {
            sessions[sessionID]?.listeners[listener.id] = nil
            sessions[sessionID]?.turns.dropTurns(from: listener.id)
        }
        for sessionID in held {
            await releaseIfIdle(sessionID)
        }
    }

    func listenerCount(session sessionID: UUID) -> Int {
        sessions[sessionID]?.listeners.count ?? 0
    }

    func isTracking(session sessionID: UUID) -> Bool {
        sessions[sessionID] != nil
    }

    // MARK: Turns

    /// Takes a turn of a session the turn's origin holds: published at once when
    /// the session is free, else when the turns before it are answered.
    func submit(_ turn: PendingTurn) async throws(ClientError) {
        let sessionID = turn.sessionID
        guard sessions[sessionID]?.listeners[turn.origin.id] != nil else { throw .sessionNotOpen(turn.envelope) }
        let action = try sessions[sessionID]!.turns.submit(turn, now: .now)
        if let action { await perform([action], in: sessionID) }
    }

    /// Drops a turn of `listener` that still waits behind its session's turn in
    /// flight; false when it is not waiting (it is being published, or is in flight).
    func withdraw(_ turnID: UUID, from listener: FrameOutbox) async -> Bool {
        guard case .withdrawn = await locate(turnID, of: listener) else { return false }
        return true
    }

    /// Cancels a turn: a waiting one here, one in flight by a signal to the workers
    /// (its reply then says `cancelled` and holds what was generated). `sessionID`
    /// names the session when the turn is not this gateway's (sent from another).
    func cancel(_ turnID: UUID, in sessionID: UUID?, from listener: FrameOutbox) async throws(ClientError) {
        let target: UUID
        switch await locate(turnID, of: listener) {
        case .withdrawn:
            return
        case .inFlight(let sessionID):
            target = sessionID
        case .unknown:
            guard let sessionID, sessions[sessionID]?.listeners[listener.id] != nil else {
                throw ClientError(code: .turnNotFound, message: "no turn \(turnID.lowercased) in progress in a session of this socket")
            }
            target = sessionID
        }
        do {
            try await dispatcher.publisher.cancel(turnID: turnID, sessionID: target)
        } catch {
            throw ClientError(code: .unavailable, message: "the message broker is unavailable; the turn was not cancelled")
        }
    }

    /// A reply envelope from the broker (or the database, after a reconnect): fanned
    /// out to every listener of the session; a final one frees the session's next turn.
    func deliver(_ reply: ReplyEnvelope) async {
        guard sessions[reply.sessionID] != nil else { return }
        let actions = sessions[reply.sessionID]!.turns.deliver(reply, now: .now)
        await perform(actions, in: reply.sessionID)
    }

    /// Ends turns whose reply did not come in time; their sessions move on.
    func expireOverdueTurns(now: ContinuousClock.Instant = .now) async {
        for sessionID in Array(sessions.keys) {
            guard let actions = sessions[sessionID]?.turns.expire(now: now), !actions.isEmpty else { continue }
            await perform(actions, in: sessionID)
        }
    }

    /// The turns in the broker or with a worker now, by session.
    func turnsInFlight() -> [(sessionID: UUID, turnID: UUID)] {
        sessions.compactMap { sessionID, session in
            session.turns.turnInFlight.map { (sessionID, $0) }
        }
    }

    /// The store says the session is completed (a socket opened it to read it): its
    /// turns are refused here rather than accepted and refused by a worker.
    func noteCompleted(_ sessionID: UUID) async {
        guard let actions = sessions[sessionID]?.turns.complete() else { return }
        await perform(actions, in: sessionID)
    }

    // MARK: Steps

    private func newSession() -> Session {
        Session(turns: SessionTurnQueue(maxWaiting: maxWaitingTurns, replyTimeout: replyTimeout))
    }

    /// The broker's answer to a publish.
    private func published(_ turn: PendingTurn, outcome: PublishOutcome) async {
        guard let actions = sessions[turn.sessionID]?.turns.published(turn.turnID, outcome: outcome, now: .now) else { return }
        await perform(actions, in: turn.sessionID)
    }

    /// Performs a session's actions in order; then releases the session if nobody
    /// needs it any more.
    private func perform(_ actions: [SessionTurnQueue.Action], in sessionID: UUID) async {
        var actions = actions[...]
        while let action = actions.popFirst() {
            switch action {
            case .publish(let turn):
                if case .terminated = publicationQueue.yield(turn) {
                    // The gateway is shutting down: refused like a broker that is gone.
                    let refused = sessions[sessionID]?.turns.published(turn.turnID, outcome: .refused(.shutDown), now: .now) ?? []
                    actions.append(contentsOf: refused)
                }
            case .send(let frame, let listener):
                listener.send(frame)
            case .broadcast(let frame):
                // No copy of the listeners: this runs for every delta.
                if let listeners = sessions[sessionID]?.listeners.values {
                    for listener in listeners { listener.send(frame) }
                }
            case .note(let note):
                record(note, in: sessionID)
            }
        }
        await releaseIfIdle(sessionID)
    }

    private func record(_ note: SessionTurnQueue.Note, in sessionID: UUID) {
        switch note {
        case .firstDelta(let duration):
            ParleyMetrics.timeToFirstDelta.record(duration)
        case .answered(let duration):
            ParleyMetrics.turnLatency.record(duration)
        case .failed(let code):
            ParleyMetrics.turnErrors.increment(by: 1, [("code", code.rawValue)])
        case .delivered(let kind):
            ParleyMetrics.repliesDelivered.increment(by: 1, [("kind", kind)])
        case .duplicateDropped(let turnID):
            logger.info("dropped a duplicate reply", metadata: ["session_id": "\(sessionID.lowercased)", "turn_id": "\(turnID.lowercased)"])
        case .timedOut(let turnID):
            logger.warning("no reply in time", metadata: ["session_id": "\(sessionID.lowercased)", "turn_id": "\(turnID.lowercased)"])
        }
    }

    private func locate(_ turnID: UUID, of listener: FrameOutbox) async -> CancelTarget {
        for (sessionID, session) in sessions where session.listeners[listener.id] != nil {
            if session.turns.isCurrent(turnID) { return .inFlight(sessionID: sessionID) }
            if let notice = sessions[sessionID]?.turns.withdraw(turnID) {
                await perform([notice], in: sessionID)
                return .withdrawn
            }
        }
        return .unknown
    }

    private func bind(_ sessionID: UUID, for listener: FrameOutbox) async throws(AMQPError) {
        let result: Result<Void, AMQPError>
        do {
            try await subscriptions.subscribe(session: sessionID)
            result = .success(())
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success:
            let waiters = sessions[sessionID]?.subscription.bindSucceeded() ?? []
            for waiter in waiters { waiter.resume(returning: .bound) }
        case .failure(let error):
            let waiters = sessions[sessionID]?.subscription.bindFailed() ?? []
            sessions[sessionID]?.listeners[listener.id] = nil
            forgetIfAbandoned(sessionID)
            for waiter in waiters { waiter.resume(returning: .failed(error)) }
            throw error
        }
    }

    /// Forgets an unbound session that no listener holds and no turn needs (a failed
    /// bind, also when other listeners were waiting for it).
    private func forgetIfAbandoned(_ sessionID: UUID) {
        guard let session = sessions[sessionID], session.subscription.isUnbound, session.isIdle else { return }
        sessions[sessionID] = nil
    }

    /// Unbinds and forgets a session that no listener holds and no turn needs.
    private func releaseIfIdle(_ sessionID: UUID) async {
        guard sessions[sessionID]?.isIdle == true, sessions[sessionID]?.subscription.release() == true else { return }
        do {
            try await subscriptions.unsubscribe(session: sessionID)
        } catch {
            logger.warning("could not unbind a session", metadata: ["session_id": "\(sessionID.lowercased)", "error": "\(error)"])
        }
        let waiters = sessions[sessionID]?.subscription.unbindFinished() ?? []
        if waiters.isEmpty, sessions[sessionID]?.isIdle == true { sessions[sessionID] = nil }
        for waiter in waiters { waiter.resume(returning: .retry) }
    }
}
