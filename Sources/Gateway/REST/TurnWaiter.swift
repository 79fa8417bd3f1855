import Foundation
import Logging
import ParleySupport
import Shared

/// Sends a turn for a REST request and waits for its reply. The request listens to
/// the session like a socket would (an outbox of its own), so the turn takes the
/// same path as a WebSocket turn: the session's order, the broker, any worker, and
/// its reply reaches the session's sockets too.
///
/// The turn is driven by a task of its own (in `RESTTurnTasks`), not by the request: when the wait ends
/// after the broker took the turn (or the client goes away) the turn still completes
/// and is stored, and the listener leaves the session once the turn has ended. When
/// the wait ends while the turn still waits behind the session's previous one, it is
/// withdrawn: nothing was sent, and the client is told so (`session_busy`).
struct TurnWaiter: Sendable {
    let pipeline: TurnPipeline
    let tasks: RESTTurnTasks
    let gatewayID: String
    let logger: Logger
    /// The longest a request waits, past its own wait, for the broker to take or refuse
    /// a turn that was being published when the wait ended.
    var decisionWait: Duration = .seconds(45)

    /// How far a request's turn got: accepted by the broker (or possibly, when
    /// unconfirmed), and its result once it has one. `decided` opens with either.
    final class Progress: Sendable {
        let decided = Gate()
        private let state = Locked<(accepted: Bool, result: Result<ReplyEnvelope.Done, ClientError>?)>((false, nil))

        var isAccepted: Bool { state.value.accepted }
        var result: Result<ReplyEnvelope.Done, ClientError>? { state.value.result }

        func accept() {
            state.withLock { $0.accepted = true }
            decided.open()
        }

        func finish(with result: Result<ReplyEnvelope.Done, ClientError>) {
            state.withLock { $0.result = result }
            decided.open()
        }
    }

    /// What a started turn reports, in order: `accepted` (the broker took it), the
    /// answer's `delta`s and `reset`s as the worker writes them, then its end.
    enum Event: Sendable {
        case accepted(clientMessageID: String?)
        case delta(ReplyEnvelope.Delta)
        case reset(ReplyEnvelope.Reset)
        case finished(Result<ReplyEnvelope.Done, ClientError>)
    }

    /// A turn that runs for a request, on a task of its own.
    struct StartedTurn: Sendable {
        let envelope: TurnEnvelope
        let listener: FrameOutbox
        let progress: Progress
        /// Bounded: a reader that falls behind loses the oldest events (deltas first:
        /// they stream much faster than the rest), never the last one, which is the end.
        let events: AsyncStream<Event>
    }

    /// Starts a turn: it goes through the session's order, the broker and a worker
    /// whatever becomes of the caller, who reads `events`.
    func start(
        _ kind: TurnEnvelope.Kind,
        content: String,
        clientMessageID: String? = nil,
        to sessionID: UUID,
        userID: String,
        channel: Channel = .rest,
        turnID: UUID = UUID()
    ) throws(ClientError) -> StartedTurn {
        let envelope = TurnEnvelope(
            kind: kind,
            turnID: turnID,
            sessionID: sessionID,
            userID: userID,
            content: content,
            clientMessageID: clientMessageID,
            gatewayID: gatewayID
        )
        var logger = self.logger
        logger[metadataKey: "session_id"] = "\(sessionID.lowercased)"
        logger[metadataKey: "turn_id"] = "\(envelope.turnID.lowercased)"
        // Deltas beyond what the reader takes are dropped; the reply repeats them.
        let listener = FrameOutbox(userID: userID, capacity: 64, channel: channel, logger: logger)
        let progress = Progress()
        let (events, report) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(256))
        let (pipeline, turnLogger) = (self.pipeline, logger)
        let started = tasks.start {
            let result = await Self.drive(envelope, listener: listener, progress: progress, report: report, pipeline: pipeline, logger: turnLogger)
            progress.finish(with: result)
            report.yield(.finished(result))
            report.finish()
        }
        guard started else {
            throw ClientError(
                code: .unavailable,
                message: "the gateway is shutting down or runs its most turns for requests; nothing was sent, try again"
            )
        }
        return StartedTurn(envelope: envelope, listener: listener, progress: progress, events: events)
    }

    /// Sends a turn and waits up to `wait` for its reply (REST).
    func send(
        _ kind: TurnEnvelope.Kind,
        content: String,
        clientMessageID: String? = nil,
        to sessionID: UUID,
        userID: String,
        wait: Duration,
        channel: Channel = .rest,
        turnID: UUID = UUID()
    ) async throws(ClientError) -> ReplyEnvelope.Done {
        let turn = try start(
            kind,
            content: content,
            clientMessageID: clientMessageID,
            to: sessionID,
            userID: userID,
            channel: channel,
            turnID: turnID
        )
        let result: Result<ReplyEnvelope.Done, ClientError>?
        do {
            // The stream (unlike `Task.value`) stops waiting when the request's task is cancelled.
            result = try await withTimeout(wait) {
                for await event in turn.events {
                    if case .finished(let result) = event { return result }
                }
                return nil
            }
        } catch {
            result = nil
        }
        if let result { return try result.get() }
        return try await waitEnded(after: wait, for: turn)
    }

    /// The caller stopped following `turn` before its end (a gRPC call cancelled or past
    /// its deadline): a turn still waiting behind the session's previous one is
    /// withdrawn, so nothing is sent that nobody waits for; once sent, it goes on and is
    /// stored. True when it was withdrawn.
    @discardableResult
    func abandon(_ turn: StartedTurn) async -> Bool {
        guard !turn.progress.isAccepted, await pipeline.withdraw(turn.envelope.turnID, from: turn.listener) else { return false }
        logger.info(
            "the caller stopped following a turn before it was sent; withdrawn",
            metadata: ["session_id": "\(turn.envelope.sessionID.lowercased)", "turn_id": "\(turn.envelope.turnID.lowercased)"]
        )
        return true
    }

    /// The request's wait is over and the turn has no result yet. Waiting behind the
    /// session's previous turn, it is withdrawn (`session_busy`: nothing was sent).
    /// Being bound or published, the broker's decision is awaited: a 504 would promise
    /// an answer the broker may still refuse. Taken by the broker, it goes on without
    /// the request (`reply_timeout`).
    private func waitEnded(after wait: Duration, for turn: StartedTurn) async throws(ClientError) -> ReplyEnvelope.Done {
        let (envelope, progress) = (turn.envelope, turn.progress)
        var logger = self.logger
        logger[metadataKey: "session_id"] = "\(envelope.sessionID.lowercased)"
        logger[metadataKey: "turn_id"] = "\(envelope.turnID.lowercased)"
        let seconds = wait.wholeMilliseconds / 1000
        if !progress.isAccepted, await pipeline.withdraw(envelope.turnID, from: turn.listener) {
            logger.info("REST request stopped waiting before its turn was sent; withdrawn")
            throw ClientError(
                code: .sessionBusy,
                message: "the session's previous message was still being answered after \(seconds) s; this one was not sent — send it again later",
                sessionID: envelope.sessionID
            )
        }
        if !progress.isAccepted {
            // Bounded by the publish's own doubt resolution and the broker's method timeout.
            try? await withTimeout(decisionWait) { await progress.decided.wait() }
            if let result = progress.result { return try result.get() }
        }
        logger.info("REST request stopped waiting; the turn goes on")
        throw ClientError(
            code: .replyTimeout,
            message:
                "no reply within \(seconds) s; the message was accepted and is still answered and stored — read it with GET /api/sessions/\(envelope.sessionID.lowercased)",
            sessionID: envelope.sessionID,
            turnID: envelope.turnID
        )
    }

    /// Submits the turn as a listener of its session, publishes it when the session
    /// is free, and waits for its end.
    private static func drive(
        _ envelope: TurnEnvelope,
        listener: FrameOutbox,
        progress: Progress,
        report: AsyncStream<Event>.Continuation,
        pipeline: TurnPipeline,
        logger: Logger
    ) async -> Result<ReplyEnvelope.Done, ClientError> {
        defer { listener.finish() }
        do {
            try await pipeline.attach(listener, to: envelope.sessionID)
        } catch {
            logger.warning("cannot route the session's replies here", metadata: ["error": "\(error)"])
            return .failure(ClientError(code: .unavailable, message: "the message broker is unavailable; nothing was sent, try again shortly"))
        }
        let outcome: Result<ReplyEnvelope.Done, ClientError>
        do {
            try await pipeline.submit(PendingTurn(envelope: envelope, origin: listener, announcesAcceptance: true))
            outcome = await Self.outcome(of: envelope.turnID, from: listener, progress: progress, report: report)
        } catch {
            outcome = .failure(error)
        }
        await pipeline.detach(listener)
        return outcome
    }

    /// Reads the listener's frames until the turn's reply or its final error. An
    /// `unconfirmed` publish is not final: the turn may still be answered, and the
    /// pipeline ends it with its reply or `reply_timeout`.
    private static func outcome(
        of turnID: UUID,
        from listener: FrameOutbox,
        progress: Progress,
        report: AsyncStream<Event>.Continuation
    ) async -> Result<ReplyEnvelope.Done, ClientError> {
        for await frame in listener.frames {
            listener.didWrite()
            switch frame {
            case .accepted(_, let id, let clientMessageID) where id == turnID:
                progress.accept()
                report.yield(.accepted(clientMessageID: clientMessageID))
            case .error(.unconfirmed, _, let context) where context.turnID == turnID:
                progress.accept()
            case .delta(let delta) where delta.turnID == turnID:
                report.yield(.delta(delta))
            case .reset(let reset) where reset.turnID == turnID:
                report.yield(.reset(reset))
            case .reply(let done) where done.turnID == turnID:
                return .success(done)
            case .error(let code, let message, let context) where context.turnID == turnID:
                return .failure(ClientError(code: code, message: message, sessionID: context.sessionID, turnID: turnID))
            default:
                continue
            }
        }
        return .failure(ClientError(code: .unavailable, message: "the gateway stopped before the reply arrived"))
    }
}
