import Foundation
import Hummingbird
import Logging
import Shared

/// The REST API (described by `Assets/openapi.json`): the same sessions, rules and queue as the
/// WebSocket, for clients that prefer request and response. Every failure is a JSON
/// error with the status its code means (`GatewayHTTPError`).
struct RESTAPI: Sendable {
    let registry: SessionRegistry
    let store: any ConversationStore
    let directory: any SessionDirectory
    let catalog: any TopicCatalog
    let turns: TurnWaiter
    let reader: RESTRequestReader
    let contentDecoder: ClientFrameDecoder
    let limits: AbuseLimits
    /// Whether `ACCOUNTS=on` (said by `GET /api/auth`).
    let accountsEnabled: Bool
    let logger: Logger

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/api/auth") { _, _ in signInOptions() }
        router.get("/api/sessions") { request, _ in try await sessions(request) }
        router.get("/api/topics") { request, _ in try await topics(request) }
        router.post("/api/sessions/start") { request, _ in try await startSession(request) }
        router.post("/api/sessions/:session_id/message") { request, context in
            try await sendMessage(request, sessionID: context.parameters.get("session_id"))
        }
        router.get("/api/sessions/:session_id") { request, context in try await history(request, sessionID: context.parameters.get("session_id")) }
        router.post("/v1/chat") { request, _ in try await chat(request) }
        router.get("/v1/chat/logs") { request, _ in try await allLogs(request) }
        router.get("/v1/chat/:user_id/logs") { request, context in
            // Path parameters arrive percent-encoded (`jo%C3%A3o`).
            try await userLogs(request, user: context.parameters.get("user_id").map { $0.removingPercentEncoding ?? $0 })
        }
        router.get("/openapi.json") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: EmbeddedAssets.openapiJSON))
            )
        }
        router.get("/docs") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: EmbeddedAssets.docsHTML))
            )
        }
    }

    /// `GET /api/auth`: how to sign in here, for a page that cannot read the settings.
    func signInOptions() -> Response {
        let authentication = if case .off = reader.authenticator.mode { "off" } else { "token" }
        return .json(RESTModels.SignInOptions(authentication: authentication, accounts: accountsEnabled))
    }

    /// `GET /api/sessions`: the caller's sessions, newest first.
    func sessions(_ request: Request) async throws(GatewayHTTPError) -> Response {
        let userID = try await reader.principal(request).actingUser()
        let limit = try reader.limit(request, default: 50, most: 100)
        var cursor: SessionCursor? = nil
        if let text = request.uri.queryParameters.get("cursor"), !text.isEmpty {
            guard let parsed = SessionCursor(text: String(text)) else {
                throw reader.malformed("cursor is not one this API gave out; use next_cursor as it came")
            }
            cursor = parsed
        }
        let sessions = try await reading("the sessions", of: userID) { () async throws(StoreError) in
            try await directory.sessions(ofUser: userID, before: cursor, limit: limit + 1)
        }
        let shown = Array(sessions.prefix(limit))
        let next = sessions.count > limit ? shown.last?.cursor.text : nil
        return .json(RESTModels.SessionList(sessions: shown.map(RESTModels.SessionItem.init), next_cursor: next))
    }

    /// `GET /api/topics`: the topic catalog (`TOPICS_FILE`), at most 500 topics.
    func topics(_ request: Request) async throws(GatewayHTTPError) -> Response {
        _ = try await reader.principal(request)
        let topics = try await reading("the topic catalog", of: nil) { () async throws(StoreError) in try await catalog.topics(limit: 500) }
        return .json(RESTModels.TopicList(topics: topics.map(RESTModels.TopicItem.init)))
    }

    /// `POST /api/sessions/start`: a session (on a topic, optionally) and the tutor's opening.
    func startSession(_ request: Request) async throws(GatewayHTTPError) -> Response {
        let userID = try await reader.principal(request).actingUser()
        try limiting { () throws(ClientError) in try AbuseLimits.check(limits.starts, userID, what: "sessions started") }
        let body = try await reader.body(RESTModels.StartRequest.self, of: request, emptyAllowed: true)
        let wait = try reader.wait(request)
        let (session, context) = try await refusing { () async throws(ClientError) in
            try await registry.start(userID: userID, topicID: body.topic_id, courseID: body.course_id)
        }
        let opening = try await refusing { () async throws(ClientError) in
            do throws(ClientError) {
                return try await turns.send(.start, content: "", to: session.id, userID: userID, wait: wait)
            } catch {
                // The session exists whatever became of its opening: say which it is.
                var error = error
                error.sessionID = session.id
                throw error
            }
        }
        return .json(RESTModels.Started(session: .init(session, context: context), message: opening.message), status: .created)
    }

    /// `POST /api/sessions/{id}/message`: the reply, once the worker has answered.
    func sendMessage(_ request: Request, sessionID text: String?) async throws(GatewayHTTPError) -> Response {
        let userID = try await reader.principal(request).actingUser()
        try limiting { () throws(ClientError) in try AbuseLimits.check(limits.turns, userID, what: "messages") }
        let sessionID = try reader.uuid(text, name: "the session id")
        let body = try await reader.body(RESTModels.MessageRequest.self, of: request)
        let wait = try reader.wait(request)
        let done = try await refusing { () async throws(ClientError) in
            let content = try contentDecoder.checkedContent(body.content, clientMessageID: body.client_msg_id)
            _ = try await registry.session(sessionID, for: userID, mustBeActive: true)
            return try await turns.send(.message, content: content, clientMessageID: body.client_msg_id, to: sessionID, userID: userID, wait: wait)
        }
        return .json(RESTModels.Replied(done))
    }

    /// `GET /api/sessions/{id}`: the session and a page of its messages, oldest first.
    func history(_ request: Request, sessionID text: String?) async throws(GatewayHTTPError) -> Response {
        let principal = try await reader.principal(request)
        let sessionID = try reader.uuid(text, name: "the session id")
        let page = try reader.page(request, defaultLimit: 100)
        let (session, context, messages) = try await refusing { () async throws(ClientError) in
            let session = try await registry.session(sessionID, for: principal.userID ?? "", admin: principal.isAdmin, mustBeActive: false)
            do {
                let context = try await store.context(ofSession: sessionID)
                let messages = try await store.messages(session: sessionID, afterID: page.cursor ?? 0, limit: page.limit + 1)
                return (session, context, messages)
            } catch {
                logger.warning("cannot read a session's history", metadata: ["session_id": "\(sessionID.lowercased)", "error": "\(error)"])
                throw ClientError(code: .unavailable, message: "the database is unavailable; try again shortly")
            }
        }
        let shown = Array(messages.filter { $0.role != .system }.prefix(page.limit))
        let next = messages.count > page.limit ? shown.last.map { String($0.id) } : nil
        return .json(RESTModels.History(session: .init(session, context: context), messages: shown, next_cursor: next))
    }

    /// `POST /v1/chat`: one prompt, one answer, in a session of its own.
    func chat(_ request: Request) async throws(GatewayHTTPError) -> Response {
        let principal = try await reader.principal(request)
        let body = try await reader.body(RESTModels.ChatRequest.self, of: request)
        let wait = try reader.wait(request)
        let userID = body.user_id.trimmingCharacters(in: .whitespaces)
        guard !userID.isEmpty else { throw reader.malformed("user_id must not be empty") }
        guard principal.mayAccess(user: userID) else {
            throw GatewayHTTPError(status: .forbidden, code: .forbidden, message: "user_id must be the user of the token")
        }
        // A call starts a session and sends a turn: both rates apply.
        try limiting { () throws(ClientError) in
            try AbuseLimits.check(limits.starts, userID, what: "sessions started")
            try AbuseLimits.check(limits.turns, userID, what: "messages")
        }
        let log = try await refusing { () async throws(ClientError) in
            let prompt = try contentDecoder.checkedContent(body.prompt, clientMessageID: nil)
            let (session, _) = try await registry.start(userID: userID, topicID: nil, courseID: nil)
            do throws(ClientError) {
                let done = try await turns.send(.message, content: prompt, to: session.id, userID: userID, wait: wait)
                return RESTModels.ChatLog(turnID: done.turnID, sessionID: session.id, userID: userID, prompt: prompt, done: done)
            } catch {
                var error = error
                error.sessionID = session.id
                throw error
            }
        }
        return .json(log)
    }

    /// `GET /v1/chat/{user_id}/logs`: the user's prompts and answers, newest first.
    func userLogs(_ request: Request, user: String?) async throws(GatewayHTTPError) -> Response {
        let principal = try await reader.principal(request)
        guard let user, !user.isEmpty else { throw reader.malformed("the user id is missing") }
        guard principal.mayAccess(user: user) else {
            throw GatewayHTTPError(status: .forbidden, code: .forbidden, message: "these are another user's logs")
        }
        return try await logs(request, user: user)
    }

    /// `GET /v1/chat/logs`: everyone's logs, for an administrator key.
    func allLogs(_ request: Request) async throws(GatewayHTTPError) -> Response {
        guard try await reader.principal(request).isAdmin else {
            throw GatewayHTTPError(status: .forbidden, code: .adminRequired, message: "every user's logs need an administrator key (ADMIN_API_KEYS)")
        }
        return try await logs(request, user: request.uri.queryParameters.get("user_id").map { String($0) })
    }

    private func logs(_ request: Request, user: String?) async throws(GatewayHTTPError) -> Response {
        let page = try reader.page(request, defaultLimit: 50)
        let entries = try await refusing { () async throws(ClientError) in
            do {
                return try await store.chatLogs(userID: user, before: page.cursor, limit: page.limit + 1)
            } catch {
                logger.warning("cannot read chat logs", metadata: ["user_id": "\(user ?? "*")", "error": "\(error)"])
                throw ClientError(code: .unavailable, message: "the database is unavailable; try again shortly")
            }
        }
        let shown = Array(entries.prefix(page.limit))
        let next = entries.count > page.limit ? shown.last.map { String($0.messageID) } : nil
        return .json(RESTModels.Logs(logs: shown.map { RESTModels.ChatLog($0) }, next_cursor: next))
    }

    /// Reads from the database, turning its failure into `unavailable`.
    private func reading<T>(_ what: String, of userID: String?, _ body: () async throws(StoreError) -> T) async throws(GatewayHTTPError) -> T {
        do {
            return try await body()
        } catch {
            logger.warning("cannot read from the database", metadata: ["reading": "\(what)", "user_id": "\(userID ?? "*")", "error": "\(error)"])
            throw GatewayHTTPError(ClientError(code: .unavailable, message: "the database is unavailable; try again shortly"))
        }
    }

    /// Runs a check (a rate limit), turning its refusal into the HTTP error its code means.
    private func limiting<T>(_ body: () throws(ClientError) -> T) throws(GatewayHTTPError) -> T {
        do {
            return try body()
        } catch {
            throw GatewayHTTPError(error)
        }
    }

    private func refusing<T>(_ body: () async throws(ClientError) -> T) async throws(GatewayHTTPError) -> T {
        try await GatewayHTTPError.refusing(body)
    }
}
