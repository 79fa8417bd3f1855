import Foundation
import Logging
import Shared

/// Why a turn could not be answered now; the delivery is retried later.
enum TurnFailure: Error, Sendable {
    case store(StoreError)
}

/// Answers one turn: from the database when it was answered before (a redelivery),
/// otherwise by asking the model and storing user message and reply together.
/// Problems the user must hear about become an `error` reply; problems a retry can
/// fix (the database is down) are thrown.
struct TurnHandler: Sendable {
    let store: any ConversationStore
    let model: any ChatModel
    let prompts: PromptBuilder
    let modelName: String

    func reply(to turn: TurnEnvelope, logger: Logger) async throws(TurnFailure) -> ReplyEnvelope {
        do {
            if let stored = try await store.reply(forTurn: turn.turnID) {
                logger.info("turn was answered before; replying from the database")
                return .done(done(turn, stored))
            }
            if turn.isExpired() {
                return failure(turn, code: "expired", "the message waited past its deadline and was not answered; send it again")
            }
            guard let session = try await store.session(id: turn.sessionID) else {
                return failure(turn, code: "session_not_found", "session \(turn.sessionID) does not exist")
            }
            guard session.userID == turn.userID else {
                return failure(turn, code: "forbidden", "session \(turn.sessionID) belongs to another user")
            }
            guard session.status == .active else {
                return failure(turn, code: "session_completed", "session \(turn.sessionID) is \(session.status.rawValue) and takes no more messages")
            }
            let history = try await store.recentMessages(session: turn.sessionID, limit: prompts.maxHistory)
            let started = ContinuousClock.now
            let completion: ChatCompletion
            do {
                completion = try await complete(prompts.prompt(history: history, turn: turn), before: turn.deadline)
            } catch {
                logger.warning("the model failed", metadata: ["error": "\(error)", "code": "\(error.code)"])
                return failure(turn, code: error.code, error.description)
            }
            let latency = started.duration(to: .now)
            let stored = try await store.record(
                CompletedTurn(
                    sessionID: turn.sessionID, turnID: turn.turnID,
                    userContent: turn.kind == .message ? turn.content : nil,
                    replyContent: completion.text, rawReply: completion.text, model: completion.model,
                    usage: completion.usage, latencyMilliseconds: Int(latency.components.seconds * 1000 + latency.components.attoseconds / 1_000_000_000_000_000)
                )
            )
            if !stored.isNew {
                logger.info("another attempt stored this turn first; replying with its answer")
            }
            return .done(done(turn, stored.message, usage: stored.isNew ? completion.usage : TokenUsage()))
        } catch {
            throw .store(error)
        }
    }

    /// Asks the model, giving up at the turn's deadline.
    private func complete(_ prompt: [PromptMessage], before deadline: Date?) async throws(LLMError) -> ChatCompletion {
        guard let deadline else { return try await model.complete(prompt) }
        let remaining = deadline.timeIntervalSinceNow
        guard remaining > 0 else { throw .unavailable("the turn's deadline passed before the model was asked") }
        let model = self.model
        do {
            return try await withTimeout(.milliseconds(Int64(remaining * 1000))) {
                try await model.complete(prompt)
            }
        } catch let error as LLMError {
            throw error
        } catch {
            throw .unavailable("no answer before the turn's deadline")
        }
    }

    private func done(_ turn: TurnEnvelope, _ message: ChatMessage, usage: TokenUsage = TokenUsage()) -> ReplyEnvelope.Done {
        ReplyEnvelope.Done(sessionID: turn.sessionID, turnID: turn.turnID, message: message, status: "active", completed: false, usage: usage)
    }

    private func failure(_ turn: TurnEnvelope, code: String, _ message: String) -> ReplyEnvelope {
        .error(ReplyEnvelope.Failure(sessionID: turn.sessionID, turnID: turn.turnID, code: code, message: message))
    }
}
