import Foundation
import GRPCCore
import Logging
import ParleyGRPC
import Shared

/// `parley.v1.Chat` (proto/parley/v1/chat.proto): the gRPC face of the same sessions
/// and turns. Every call goes through what the WebSocket and REST use — the session
/// registry, the limits, `TurnWaiter` and the turn pipeline — so a gRPC turn keeps
/// the session's order and reaches the session's sockets too. A refusal is the gRPC
/// status of its Parley code (`RPCError(ClientError)`).
struct GRPCChatService: Parley_V1_Chat.ServiceProtocol {
    let registry: SessionRegistry
    let store: any ConversationStore
    let turns: TurnWaiter
    let pipeline: TurnPipeline
    let authenticator: Authenticator
    let contentDecoder: ClientFrameDecoder
    let limits: AbuseLimits
    let logger: Logger

    /// The metadata that names the user when authentication is off.
    static let userKey = "x-parley-user"

    func startSession(
        request: ServerRequest<Parley_V1_StartSessionRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Parley_V1_StartSessionResponse> {
        let deadline = GRPCDeadline(request.metadata)
        let userID = try await user(of: request.metadata)
        try limit(limits.starts, userID, what: "sessions started")
        let message = request.message
        let (session, sessionContext) = try await refusing { () async throws(ClientError) in
            try await registry.start(
                userID: userID,
                topicID: message.topicID > 0 ? message.topicID : nil,
                courseID: message.courseID > 0 ? message.courseID : nil
            )
        }
        let opening = try await naming(session.id) {
            let turn = try refusingAtOnce { () throws(ClientError) in
                try turns.start(.start, content: "", to: session.id, userID: userID, channel: .grpc)
            }
            return try await follow(turn, context: context, deadline: deadline) { _ in }
        }
        return ServerResponse(
            message: .with {
                $0.session = Parley_V1_Session(session, context: sessionContext)
                $0.opening = Parley_V1_Message(opening.message)
            }
        )
    }

    func sendMessage(
        request: ServerRequest<Parley_V1_SendMessageRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Parley_V1_SendMessageEvent> {
        let deadline = GRPCDeadline(request.metadata)
        let userID = try await user(of: request.metadata)
        try limit(limits.turns, userID, what: "messages")
        let message = request.message
        let sessionID = try uuid(message.sessionID, field: "session_id")
        let clientMessageID = message.clientMsgID.isEmpty ? nil : message.clientMsgID
        let turn = try await refusing { () async throws(ClientError) in
            let content = try contentDecoder.checkedContent(message.content, clientMessageID: clientMessageID)
            _ = try await registry.session(sessionID, for: userID, mustBeActive: true)
            return try turns.start(.message, content: content, clientMessageID: clientMessageID, to: sessionID, userID: userID, channel: .grpc)
        }
        return StreamingServerResponse { writer in
            let done = try await follow(turn, context: context, deadline: deadline) { event in
                guard let progress = Parley_V1_SendMessageEvent(event, sessionID: sessionID, turnID: turn.envelope.turnID) else { return }
                try await writer.write(progress)
            }
            try await writer.write(.with { $0.reply = Parley_V1_Reply(done) })
            return [:]
        }
    }

    func getHistory(
        request: ServerRequest<Parley_V1_GetHistoryRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Parley_V1_GetHistoryResponse> {
        let userID = try await user(of: request.metadata)
        try limit(limits.resumes, userID, what: "history reads")
        let message = request.message
        let sessionID = try uuid(message.sessionID, field: "session_id")
        let limit = message.limit == 0 ? 100 : Int(message.limit)
        guard (1...500).contains(limit) else { throw invalid("limit must be from 1 to 500 (0: 100)") }
        guard message.afterID >= 0 else { throw invalid("after_id must not be negative") }
        let session = try await refusing { () async throws(ClientError) in
            try await registry.session(sessionID, for: userID, mustBeActive: false)
        }
        let (sessionContext, messages) = try await refusing { () async throws(ClientError) in
            do {
                return (
                    try await store.context(ofSession: sessionID),
                    try await store.messages(session: sessionID, afterID: message.afterID, limit: limit + 1)
                )
            } catch {
                logger.warning("cannot read a session's history", metadata: ["session_id": "\(sessionID.lowercased)", "error": "\(error)"])
                throw ClientError(code: .unavailable, message: "the database is unavailable; try again shortly")
            }
        }
        let shown = messages.filter { $0.role != .system }
        return ServerResponse(
            message: .with {
                $0.session = Parley_V1_Session(session, context: sessionContext)
                $0.messages = shown.prefix(limit).map(Parley_V1_Message.init)
                $0.more = messages.count > limit
            }
        )
    }

    func cancel(request: ServerRequest<Parley_V1_CancelRequest>, context: ServerContext) async throws -> ServerResponse<Parley_V1_CancelResponse> {
        let userID = try await user(of: request.metadata)
        try limit(limits.cancels, userID, what: "cancels")
        let sessionID = try uuid(request.message.sessionID, field: "session_id")
        let turnID = try uuid(request.message.turnID, field: "turn_id")
        _ = try await refusing { () async throws(ClientError) in try await registry.session(sessionID, for: userID, mustBeActive: false) }
        // A cancel acts as a listener of the session for as long as it takes.
        let listener = FrameOutbox(userID: userID, capacity: 16, channel: .grpc, logger: logger)
        defer { listener.finish() }
        do {
            try await pipeline.attach(listener, to: sessionID)
        } catch {
            throw RPCError(ClientError(code: .unavailable, message: "the message broker is unavailable; the turn was not cancelled"))
        }
        let result: Result<Void, ClientError>
        do {
            try await pipeline.cancel(turnID, in: sessionID, from: listener)
            result = .success(())
        } catch {
            result = .failure(error)
        }
        await pipeline.detach(listener)
        try refusingAtOnce { () throws(ClientError) in try result.get() }
        return ServerResponse(message: Parley_V1_CancelResponse())
    }

    func askQuestion(
        request: ServerRequest<Parley_V1_AskQuestionRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Parley_V1_AskQuestionResponse> {
        let deadline = GRPCDeadline(request.metadata)
        let userID = try await user(of: request.metadata)
        // A question starts a session and sends a turn: both rates apply.
        try limit(limits.starts, userID, what: "sessions started")
        try limit(limits.turns, userID, what: "messages")
        let message = request.message
        let question = message.question.trimmingCharacters(in: .whitespacesAndNewlines)
        let lesson = message.lessonContext.trimmingCharacters(in: .whitespacesAndNewlines)
        let (session, turn) = try await refusing { () async throws(ClientError) in
            let content = try contentDecoder.checkedContent(
                lesson.isEmpty ? question : "Lesson context:\n\(lesson)\n\nQuestion: \(question)",
                clientMessageID: nil
            )
            guard !question.isEmpty else { throw ClientError(code: .emptyContent, message: "the question is empty") }
            let (session, _) = try await registry.start(userID: userID, topicID: nil, courseID: nil)
            return (session, try turns.start(.message, content: content, to: session.id, userID: userID, channel: .grpc))
        }
        let done = try await naming(session.id) { try await follow(turn, context: context, deadline: deadline) { _ in } }
        return ServerResponse(
            message: .with {
                $0.sessionID = session.id.lowercased
                $0.turnID = done.turnID.lowercased
                $0.answer = done.message.content
            }
        )
    }

    // MARK: Following a turn

    /// Forwards `turn`'s progress until its end: its reply, or its error as a status.
    /// When the call ends first (the client cancelled, went away or ran past its
    /// deadline), a turn not yet sent is withdrawn and a sent one goes on and is stored.
    private func follow(
        _ turn: TurnWaiter.StartedTurn,
        context: ServerContext,
        deadline: GRPCDeadline?,
        forward: @escaping @Sendable (TurnWaiter.Event) async throws -> Void
    ) async throws -> ReplyEnvelope.Done {
        let outcome: Result<ReplyEnvelope.Done, ClientError>?
        do {
            outcome = try await withThrowingTaskGroup(of: Result<ReplyEnvelope.Done, ClientError>?.self) { group in
                group.addTask {
                    for await event in turn.events {
                        if case .finished(let result) = event { return result }
                        try await forward(event)
                    }
                    return nil
                }
                group.addTask {
                    try await context.cancellation.cancelled
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
        } catch {
            await turns.abandon(turn)
            throw error
        }
        guard let outcome else {
            let withdrawn = await turns.abandon(turn)
            throw RPCError(
                code: deadline?.hasPassed() == true ? .deadlineExceeded : .cancelled,
                message: withdrawn
                    ? "the call ended before the message was sent; it was not sent"
                    : "the call ended before the reply; the message is still answered and stored (GetHistory shows it)"
            )
        }
        switch outcome {
        case .success(let done): return done
        case .failure(let error): throw RPCError(error)
        }
    }

    /// Runs `body` for a session the call started: a failure names the session, which
    /// exists whatever became of its turn.
    private func naming<T>(_ sessionID: UUID, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch var error as RPCError {
            error.metadata.addString(sessionID.lowercased, forKey: "parley-session-id")
            throw error
        }
    }

    // MARK: Reading requests

    /// The caller's user id: the bearer token of `authorization`, or with
    /// authentication off `x-parley-user` (default `local`).
    private func user(of metadata: Metadata) async throws(RPCError) -> String {
        let authorization = metadata[stringValues: "authorization"].first(where: { _ in true })
        let requested = metadata[stringValues: Self.userKey].first(where: { _ in true })
        do {
            return try await authenticator.userID(token: Authenticator.token(authorization: authorization, query: nil), requestedUser: requested)
        } catch {
            throw RPCError(error)
        }
    }

    private func uuid(_ text: String, field: String) throws(RPCError) -> UUID {
        guard let id = UUID(uuidString: text) else { throw invalid("\(field) must be a UUID") }
        return id
    }

    private func invalid(_ message: String) -> RPCError {
        RPCError(ClientError(code: .malformedRequest, message: message))
    }

    private func limit(_ limiter: RateLimiter, _ userID: String, what: String) throws(RPCError) {
        do {
            try AbuseLimits.check(limiter, userID, what: what)
        } catch {
            throw RPCError(error)
        }
    }

    private func refusing<T>(_ body: () async throws(ClientError) -> T) async throws(RPCError) -> T {
        do {
            return try await body()
        } catch {
            throw RPCError(error)
        }
    }

    private func refusingAtOnce<T>(_ body: () throws(ClientError) -> T) throws(RPCError) -> T {
        do {
            return try body()
        } catch {
            throw RPCError(error)
        }
    }
}
