import Foundation
import HummingbirdWebSocket
import Logging
import Shared

/// Serves one WebSocket: a reader that validates frames and turns them into
/// session operations, and a writer that drains the socket's outbox. Every bad
/// frame gets an error frame and the socket stays open.
struct ConnectionHandler: Sendable {
    let pipeline: TurnPipeline
    let store: any ConversationStore
    let registry: SessionRegistry
    let decoder: ClientFrameDecoder
    let gatewayID: String
    let maxFrameBytes: Int
    let outboxCapacity: Int
    let maxSessionsPerSocket: Int
    let limits: AbuseLimits
    let logger: Logger

    /// State of one socket, owned by its reader.
    private struct Socket {
        let outbox: FrameOutbox
        var currentSession: UUID?
        var openSessions: Set<UUID> = []
    }

    /// Returns when the client closes; rethrows a read error (e.g. a message over
    /// `maxFrameBytes`) so that the socket is closed with the matching code (1009).
    func serve(
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter,
        userID: String,
        format: SocketFormat = .json,
        channel: Channel = .websocket
    ) async throws {
        var logger = self.logger
        logger[metadataKey: "user_id"] = "\(userID)"
        let outbox = FrameOutbox(userID: userID, capacity: outboxCapacity, channel: channel, logger: logger)
        logger[metadataKey: "socket_id"] = "\(outbox.id)"
        logger.info("socket connected", metadata: ["format": "\(format.rawValue)"])
        ParleyMetrics.wsConnects.increment()
        let connections = ParleyMetrics.wsConnections.meter()
        connections.increment()
        defer { connections.decrement() }
        var readError: (any Error)?
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await frame in outbox.frames {
                    guard let text = format.render(frame) else {
                        outbox.didWrite()
                        continue
                    }
                    do {
                        try await outbound.write(.text(text))
                        outbox.didWrite()
                    } catch {
                        return
                    }
                }
                if outbox.isOverrun {
                    // A reply could not be queued: the client must reconnect and resume.
                    try? await outbound.close(.unknown(1013), reason: "replies overran this socket; reconnect and resume")
                }
            }
            var socket = Socket(outbox: outbox)
            do {
                for try await message in inbound.messages(maxSize: maxFrameBytes) {
                    guard case .text(let text) = message else {
                        ParleyMetrics.framesReceived.increment(by: 1, [("type", "invalid")])
                        ParleyMetrics.framesRejected.increment(by: 1, [("reason", "unsupported_frame")])
                        outbox.send(.error(code: .unsupportedFrame, message: "send text frames (JSON or plain text), not binary"))
                        continue
                    }
                    await handle(text, socket: &socket, logger: logger)
                }
            } catch {
                logger.info("socket read ended", metadata: ["error": "\(error)"])
                readError = error
            }
            outbox.finish()
            await pipeline.detach(outbox)
        }
        logger.info("socket closed")
        if let readError { throw readError }
    }

    private func handle(_ text: String, socket: inout Socket, logger: Logger) async {
        do throws(ClientError) {
            let frame: ClientFrame
            do {
                frame = try decoder.decode(text)
            } catch {
                ParleyMetrics.framesReceived.increment(by: 1, [("type", "invalid")])
                throw error
            }
            ParleyMetrics.framesReceived.increment(by: 1, [("type", frame.kind)])
            try limit(frame, user: socket.outbox.userID)
            switch frame {
            case .start(let requestID, let topicID, let courseID):
                let sessionID = try await startSession(topicID: topicID, courseID: courseID, requestID: requestID, socket: &socket, logger: logger)
                try await submit(.start, content: "", clientMessageID: nil, to: sessionID, socket: socket, logger: logger)
            case .message(let sessionID, let content, let clientMessageID):
                let target: UUID
                if let sessionID {
                    try await open(sessionID, socket: &socket, clientMessageID: clientMessageID)
                    target = sessionID
                } else if let current = socket.currentSession {
                    target = current
                } else {
                    // A person typing into wscat: start a free chat session for them
                    // (a session start like any other, for the limits too).
                    try AbuseLimits.check(limits.starts, socket.outbox.userID, what: "sessions started")
                    target = try await startSession(topicID: nil, courseID: nil, requestID: nil, socket: &socket, logger: logger)
                }
                socket.currentSession = target
                try await submit(.message, content: content, clientMessageID: clientMessageID, to: target, socket: socket, logger: logger)
            case .cancel(let turnID, let sessionID):
                try await pipeline.cancel(turnID, in: sessionID, from: socket.outbox)
            case .resume(let sessionID, let afterID):
                // Live frames wait until the history is out (see FrameOutbox).
                socket.outbox.hold()
                do {
                    let session = try await openForReading(sessionID, socket: &socket)
                    let (messages, more) = try await history(of: sessionID, after: afterID)
                    socket.currentSession = sessionID
                    let frame = ServerFrame.history(sessionID: sessionID, messages: messages, status: session.status.rawValue, more: more)
                    socket.outbox.release(first: frame, session: sessionID, coveredUpTo: messages.last?.id)
                } catch {
                    socket.outbox.release(first: nil)
                    throw error
                }
            }
        } catch {
            logger.info("frame refused", metadata: ["code": "\(error.code)"])
            ParleyMetrics.framesRejected.increment(by: 1, [("reason", error.code.rawValue)])
            socket.outbox.send(
                .error(
                    code: error.code,
                    message: error.message,
                    context: .init(requestID: error.requestID, clientMessageID: error.clientMessageID, retryAfter: error.retryAfter)
                )
            )
        }
    }

    /// The user's rate for the frame's kind of action (a plain-text message that starts
    /// a session counts as a turn here; its start is counted when it happens).
    private func limit(_ frame: ClientFrame, user: String) throws(ClientError) {
        do throws(ClientError) {
            switch frame {
            case .start: try AbuseLimits.check(limits.starts, user, what: "sessions started")
            case .message: try AbuseLimits.check(limits.turns, user, what: "messages")
            case .cancel: try AbuseLimits.check(limits.cancels, user, what: "cancels")
            case .resume: try AbuseLimits.check(limits.resumes, user, what: "resumes")
            }
        } catch {
            var error = error
            switch frame {
            case .start(let requestID, _, _): error.requestID = requestID
            case .message(_, _, let clientMessageID): error.clientMessageID = clientMessageID
            case .cancel, .resume: break
            }
            throw error
        }
    }

    /// One page of a session's messages after `afterID`, and whether more follow.
    private func history(of sessionID: UUID, after afterID: Int64) async throws(ClientError) -> (messages: [ChatMessage], more: Bool) {
        do {
            let page = try await store.messages(session: sessionID, afterID: afterID, limit: Self.historyPage + 1)
            return (Array(page.prefix(Self.historyPage)), page.count > Self.historyPage)
        } catch {
            throw ClientError(code: .unavailable, message: "the database is unavailable; try again shortly")
        }
    }

    private func startSession(
        topicID: Int64?,
        courseID: Int64?,
        requestID: String?,
        socket: inout Socket,
        logger: Logger
    ) async throws(ClientError) -> UUID {
        guard socket.openSessions.count < maxSessionsPerSocket else {
            throw ClientError(
                code: .tooManySessions,
                message: "this socket already uses \(maxSessionsPerSocket) sessions; open another socket",
                requestID: requestID
            )
        }
        let session: SessionRecord
        do {
            (session, _) = try await registry.start(userID: socket.outbox.userID, topicID: topicID, courseID: courseID)
        } catch {
            var error = error
            error.requestID = requestID
            throw error
        }
        try await attach(session.id, socket: &socket, requestID: requestID, clientMessageID: nil)
        socket.currentSession = session.id
        socket.outbox.send(.session(sessionID: session.id, status: SessionRecord.Status.active.rawValue, requestID: requestID))
        return session.id
    }

    /// Checks that the socket's user owns an existing, active session and routes
    /// its replies to this socket.
    private func open(_ sessionID: UUID, socket: inout Socket, clientMessageID: String?) async throws(ClientError) {
        guard !socket.openSessions.contains(sessionID) else { return }
        do {
            _ = try await registry.session(sessionID, for: socket.outbox.userID, mustBeActive: true)
        } catch {
            var error = error
            error.clientMessageID = clientMessageID
            throw error
        }
        try await attach(sessionID, socket: &socket, requestID: nil, clientMessageID: clientMessageID)
    }

    /// Like `open`, for `resume`: a completed session's history can be read too (sending
    /// to it is refused), and the session's status goes into the history frame.
    private func openForReading(_ sessionID: UUID, socket: inout Socket) async throws(ClientError) -> SessionRecord {
        let session = try await registry.session(sessionID, for: socket.outbox.userID, mustBeActive: false)
        if !socket.openSessions.contains(sessionID) {
            try await attach(sessionID, socket: &socket, requestID: nil, clientMessageID: nil)
        }
        if session.status != .active { await pipeline.noteCompleted(sessionID) }
        return session
    }

    /// The most messages one `history` frame carries.
    static let historyPage = 500

    private func attach(_ sessionID: UUID, socket: inout Socket, requestID: String?, clientMessageID: String?) async throws(ClientError) {
        guard socket.openSessions.count < maxSessionsPerSocket else {
            throw ClientError(
                code: .tooManySessions,
                message: "this socket already uses \(maxSessionsPerSocket) sessions; open another socket",
                requestID: requestID,
                clientMessageID: clientMessageID
            )
        }
        do {
            try await pipeline.attach(socket.outbox, to: sessionID)
        } catch {
            throw ClientError(
                code: .unavailable,
                message: "the message broker is unavailable; try again shortly",
                requestID: requestID,
                clientMessageID: clientMessageID
            )
        }
        socket.openSessions.insert(sessionID)
    }

    private func submit(
        _ kind: TurnEnvelope.Kind,
        content: String,
        clientMessageID: String?,
        to sessionID: UUID,
        socket: Socket,
        logger: Logger
    ) async throws(ClientError) {
        let envelope = TurnEnvelope(
            kind: kind,
            sessionID: sessionID,
            userID: socket.outbox.userID,
            content: content,
            clientMessageID: clientMessageID,
            gatewayID: gatewayID
        )
        logger.debug("turn submitted", metadata: ["session_id": "\(sessionID.lowercased)", "turn_id": "\(envelope.turnID.lowercased)"])
        try await pipeline.submit(PendingTurn(envelope: envelope, origin: socket.outbox))
    }
}
