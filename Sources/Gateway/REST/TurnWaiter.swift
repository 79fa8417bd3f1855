import Foundation
import Logging
import Shared

/// Sends a turn for a REST request and waits for its reply. The request listens to
/// the session like a socket would (an outbox of its own), so the turn takes the
/// same path as a WebSocket turn: the session's order, the broker, any worker, and
/// its reply reaches the session's sockets too.
///
/// The turn is driven by a task of its own, not by the request: when the wait ends
/// first (or the client goes away) the turn still completes and is stored, and the
/// listener leaves the session once the turn has ended.
struct TurnWaiter: Sendable {
    let hub: SessionHub
    let dispatcher: TurnDispatcher
    let gatewayID: String
    let logger: Logger

    /// The reply, or the error the turn ended with. `reply_timeout` when `wait` passes
    /// first; the turn goes on.
    func send(
        _ kind: TurnEnvelope.Kind, content: String, clientMessageID: String? = nil, to sessionID: UUID, userID: String, wait: Duration
    ) async throws(FrameError) -> ReplyEnvelope.Done {
        let envelope = TurnEnvelope(
            kind: kind, sessionID: sessionID, userID: userID, content: content, clientMessageID: clientMessageID, gatewayID: gatewayID
        )
        let (hub, dispatcher, logger) = (self.hub, self.dispatcher, self.logger)
        // The request waits on this stream, which (unlike `Task.value`) stops waiting
        // when the request's task is cancelled.
        let (results, report) = AsyncStream.makeStream(of: Result<ReplyEnvelope.Done, FrameError>.self, bufferingPolicy: .bufferingNewest(1))
        Task {
            report.yield(await Self.drive(envelope, hub: hub, dispatcher: dispatcher, logger: logger))
            report.finish()
        }
        let result: Result<ReplyEnvelope.Done, FrameError>?
        do {
            result = try await withTimeout(wait) {
                for await result in results { return result }
                return nil
            }
        } catch {
            result = nil
        }
        guard let result else {
            logger.info(
                "REST request stopped waiting; the turn goes on",
                metadata: ["session_id": "\(sessionID.lowercased)", "turn_id": "\(envelope.turnID.lowercased)"]
            )
            throw FrameError(
                code: "reply_timeout",
                message: "no reply within \(wait.wholeMilliseconds / 1000) s; the message was accepted and is still answered and stored — read it with GET /api/sessions/\(sessionID.lowercased)",
                sessionID: sessionID, turnID: envelope.turnID
            )
        }
        return try result.get()
    }

    /// Submits the turn as a listener of its session, publishes it when the session
    /// is free, and waits for its end.
    private static func drive(
        _ envelope: TurnEnvelope, hub: SessionHub, dispatcher: TurnDispatcher, logger: Logger
    ) async -> Result<ReplyEnvelope.Done, FrameError> {
        // Deltas are not needed here: a small outbox drops them and keeps the rest.
        let listener = SocketOutbox(userID: envelope.userID, capacity: 64, logger: logger)
        defer { listener.finish() }
        do {
            try await hub.attach(listener, to: envelope.sessionID)
        } catch {
            return .failure(FrameError(code: "unavailable", message: "the message broker is unavailable; nothing was sent, try again shortly"))
        }
        let outcome: Result<ReplyEnvelope.Done, FrameError>
        do {
            if let publishNow = try await hub.submit(PendingTurn(envelope: envelope, origin: listener)) {
                await dispatcher.publish(startingWith: publishNow)
            }
            outcome = await Self.outcome(of: envelope.turnID, from: listener)
        } catch {
            outcome = .failure(error)
        }
        await hub.detach(listener)
        return outcome
    }

    /// Reads the listener's frames until the turn's reply or its final error.
    private static func outcome(of turnID: UUID, from listener: SocketOutbox) async -> Result<ReplyEnvelope.Done, FrameError> {
        for await frame in listener.frames {
            listener.didWrite()
            switch frame {
            case .reply(let done) where done.turnID == turnID:
                return .success(done)
            case .error(let code, let message, let context) where context.turnID == turnID:
                return .failure(FrameError(code: code, message: message, sessionID: context.sessionID, turnID: turnID))
            default:
                continue
            }
        }
        return .failure(FrameError(code: "unavailable", message: "the gateway stopped before the reply arrived"))
    }
}
