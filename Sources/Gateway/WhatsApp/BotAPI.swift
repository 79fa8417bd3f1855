import Foundation
import Hummingbird
import Logging
import Shared

/// The older WhatsApp bot's endpoints, kept for its users (a gateway in front of a
/// WhatsApp client that posts each message and sends the answer itself), behind the
/// keys in `WHATSAPP_API_KEYS`:
///
/// - `POST /whatsapp {number, text, message_id?}`: the number's conversation (the one
///   its Cloud API messages go to), channel `whatsapp`;
/// - `POST /chat {user_id, message, message_id?}`: a bot user's conversation.
///
/// Both answer `{user_id, reply, turns, session_id, turn_id}` once the turn is
/// answered (the REST API's wait, `?wait=`), where `turns` counts the user's messages
/// in the conversation. A `message_id` makes a repeated call the same turn: answered
/// once, its reply read again.
struct BotAPI: Sendable {
    let keys: Set<String>
    let sessions: ChatterSessions
    let turns: TurnWaiter
    let reader: RESTRequestReader
    let contentDecoder: ClientFrameDecoder
    let limits: AbuseLimits
    /// Where a retried `message_id`'s earlier turns stand (nil: not looked at).
    let standings: (any TurnStandings)?
    let logger: Logger

    /// Turns one `message_id` may have: a retry after a turn that ended unanswered
    /// (the model failed, the broker refused it) is a new turn, up to this many.
    static let maxTurnsPerMessageID = 8

    struct WhatsAppRequest: RequestBody {
        static let fields = ["number", "text", "message_id"]
        var number: String
        var text: String
        var message_id: String?
    }

    struct ChatRequest: RequestBody {
        static let fields = ["user_id", "message", "message_id"]
        var user_id: String
        var message: String
        var message_id: String?
    }

    struct Answer: Encodable {
        var user_id: String
        var reply: String
        var turns: Int
        var session_id: String
        var turn_id: String
    }

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.post("/whatsapp") { request, _ in try await whatsapp(request) }
        router.post("/chat") { request, _ in try await chat(request) }
    }

    func whatsapp(_ request: Request) async throws(GatewayHTTPError) -> Response {
        try authorize(request)
        let body = try await reader.body(WhatsAppRequest.self, of: request)
        // People write numbers with a plus, spaces or dashes; WhatsApp ids are digits.
        let number = body.number.filter { !" +-()".contains($0) }
        guard WebhookPayload.isIdentifier(number, most: 32) else {
            throw reader.malformed("number must be a phone number in international form (digits, optionally with +, spaces or dashes)")
        }
        let answer = try await answer(
            body.text,
            as: ChatterSessions.userID(whatsApp: number),
            shownAs: number,
            messageID: body.message_id,
            channel: .whatsapp,
            request
        )
        return .json(answer)
    }

    func chat(_ request: Request) async throws(GatewayHTTPError) -> Response {
        try authorize(request)
        let body = try await reader.body(ChatRequest.self, of: request)
        let user = body.user_id.trimmingCharacters(in: .whitespaces)
        guard UserID.isValid(user) else { throw reader.malformed("user_id must be \(UserID.rule)") }
        let answer = try await answer(
            body.message,
            as: ChatterSessions.userID(bot: user),
            shownAs: user,
            messageID: body.message_id,
            channel: .rest,
            request
        )
        return .json(answer)
    }

    private func authorize(_ request: Request) throws(GatewayHTTPError) {
        guard let token = Authenticator.token(authorization: request.headers[.authorization], query: nil) else {
            throw GatewayHTTPError(
                status: .unauthorized,
                code: .missingToken,
                message: "send one of WHATSAPP_API_KEYS as Authorization: Bearer <key>"
            )
        }
        guard keys.contains(token) else {
            throw GatewayHTTPError(status: .unauthorized, code: .invalidToken, message: "the key is not one of WHATSAPP_API_KEYS")
        }
    }

    private func answer(
        _ text: String,
        as userID: String,
        shownAs shownUser: String,
        messageID: String?,
        channel: Channel,
        _ request: Request
    ) async throws(GatewayHTTPError) -> Answer {
        if let messageID, messageID.isEmpty || messageID.utf8.count > 256 { throw reader.malformed("message_id must be 1 to 256 bytes") }
        let wait = try reader.wait(request)
        return try await GatewayHTTPError.refusing { () async throws(ClientError) in
            try AbuseLimits.check(limits.turns, userID, what: "messages")
            let content = try contentDecoder.checkedContent(text, clientMessageID: nil)
            let sessionID = try await sessions.session(of: userID)
            let turnID = try await turnID(for: messageID, of: userID)
            do throws(ClientError) {
                let done = try await turns.send(
                    .message,
                    content: content,
                    to: sessionID,
                    userID: userID,
                    wait: wait,
                    channel: channel,
                    turnID: turnID
                )
                let count = try await sessions.turns(in: sessionID)
                return Answer(
                    user_id: shownUser,
                    reply: done.message.content,
                    turns: count,
                    session_id: sessionID.lowercased,
                    turn_id: turnID.lowercased
                )
            } catch {
                var error = error
                error.sessionID = sessionID
                throw error
            }
        }
    }

    /// The turn of a call: a new one without a `message_id`; with one, the first of
    /// its turns that may still be answered (or is answered), so that a repeated call
    /// is answered once and a call after a failed turn asks again. Named by the user
    /// too: one user's message id never answers another's.
    private func turnID(for messageID: String?, of userID: String) async throws(ClientError) -> UUID {
        guard let messageID else { return UUID() }
        var attempt = 0
        while true {
            let turnID = WhatsAppTurnID.of(messageID: "\(userID):\(messageID)", attempt: attempt)
            guard let standings, attempt + 1 < Self.maxTurnsPerMessageID else { return turnID }
            let standing: TurnStanding
            do {
                standing = try await standings.standing(ofTurn: turnID)
            } catch {
                logger.warning("cannot read where a message's turn stands", metadata: ["user_id": "\(userID)", "error": "\(error)"])
                throw ClientError(code: .unavailable, message: "the database is unavailable; nothing was sent, try again shortly")
            }
            switch standing {
            case .ended, .withdrawn: attempt += 1
            case .answered, .open, .unknown: return turnID
            }
        }
    }
}
