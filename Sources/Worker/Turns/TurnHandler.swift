import Foundation
import Logging
import Shared

/// Why a turn could not be answered now; the delivery is retried later.
enum TurnFailure: Error, Sendable {
    case store(StoreError)
}

/// Answers one turn: from the database when it was answered before (a redelivery),
/// otherwise by generating the answer — streamed to `onProgress` as it comes — and
/// storing user message and reply together. Problems the user must hear about
/// become an `error` reply; problems a retry can fix (the database is down) are
/// thrown.
struct TurnHandler: Sendable {
    let store: any ConversationStore
    let generator: ProviderChain
    let prompts: PromptBuilder
    let cancellations: TurnCancellations
    /// The model writes it when the learner has mastered the topic; no client sees it.
    var completionMarker = PromptBuilder.defaultCompletionMarker

    func reply(
        to turn: TurnEnvelope, logger: Logger, onProgress: @escaping @Sendable (GenerationProgress) async -> Void = { _ in }
    ) async throws(TurnFailure) -> ReplyEnvelope {
        do {
            if let stored = try await store.reply(forTurn: turn.turnID) {
                logger.info("turn was answered before; replying from the database")
                let completed = try await store.session(id: turn.sessionID)?.status == .completed
                return .done(done(turn, stored, completed: completed))
            }
            if turn.isExpired() {
                return failure(turn, code: "expired", "the message waited past its deadline and was not answered; send it again")
            }
            guard let session = try await store.session(id: turn.sessionID) else {
                return failure(turn, code: "session_not_found", "session \(turn.sessionID.lowercased) does not exist")
            }
            guard session.userID == turn.userID else {
                return failure(turn, code: "forbidden", "session \(turn.sessionID.lowercased) belongs to another user")
            }
            guard session.status == .active else {
                return failure(turn, code: "session_completed", "session \(turn.sessionID.lowercased) is \(session.status.rawValue) and takes no more messages")
            }
            let history = try await store.recentMessages(session: turn.sessionID, limit: prompts.maxHistory)
            let context = try await store.context(ofSession: turn.sessionID) ?? SessionContext()
            // A marker the user typed must complete nothing: the model never sees it
            // (it could echo it back), and history keeps the message without it.
            var asked = turn
            if !completionMarker.isEmpty { asked.content = turn.content.replacingOccurrences(of: completionMarker, with: "") }
            let started = ContinuousClock.now
            // What the user has been shown: the model's text without the marker.
            let partial = Locked("")
            let marker = completionMarker
            let filter = Locked(CompletionMarkerFilter(marker: marker))
            let outcome = await generate(prompts.prompt(history: history, turn: asked, context: context), for: turn) { progress in
                switch progress {
                case .text(let piece):
                    let shown = filter.withLock { $0.feed(piece) }
                    guard !shown.isEmpty else { return }
                    partial.withLock { $0 += shown }
                    await onProgress(.text(shown))
                case .reset:
                    filter.withLock { $0 = CompletionMarkerFilter(marker: marker) }
                    partial.withLock { $0 = "" }
                    await onProgress(progress)
                }
            }
            let tail = filter.withLock { $0.finish() }
            if !tail.isEmpty, case .finished = outcome { await onProgress(.text(tail)) }
            let latency = started.duration(to: .now)
            var record = CompletedTurn(
                sessionID: turn.sessionID, turnID: turn.turnID, userContent: turn.kind == .message ? asked.content : nil,
                replyContent: "", rawReply: "", model: generator.primary.model, usage: TokenUsage(), latencyMilliseconds: latency.wholeMilliseconds
            )
            switch outcome {
            case .failed(let error):
                logger.warning("the model failed", metadata: ["error": "\(error)", "code": "\(error.code)"])
                return failure(turn, code: error.code, error.description)
            case .cancelledBeforeStart:
                return failure(turn, code: "cancelled", "the message was cancelled before an answer was started")
            case .cancelled:
                logger.info("turn cancelled; keeping what was generated")
                record.replyContent = partial.value
                record.rawReply = partial.value
                record.cancelled = true
            case .finished(let result):
                let raw = result.completion.text
                record.replyContent = filter.value.visible(raw)
                record.rawReply = raw
                record.completesSession = !marker.isEmpty && raw.contains(marker)
                if record.completesSession { logger.info("the learner completed the topic") }
                record.model = result.completion.model
                record.usage = result.completion.usage
                record.provider = result.provider
                record.timeToFirstTokenMilliseconds = result.timeToFirstToken?.wholeMilliseconds
                record.finishReason = result.completion.finishReason
                record.attempts = result.attempts
            }
            let stored = try await store.record(record)
            if stored.isNew, record.completesSession { ParleyMetrics.topicCompletions.increment() }
            if !stored.isNew {
                logger.info("another attempt stored this turn first; replying with its answer")
            }
            let completed = stored.isNew ? record.completesSession : try await store.session(id: turn.sessionID)?.status == .completed
            return .done(
                done(
                    turn, stored.message, usage: stored.isNew ? record.usage : TokenUsage(), cancelled: record.cancelled && stored.isNew,
                    completed: completed, model: stored.isNew ? record.model : nil
                )
            )
        } catch {
            throw .store(error)
        }
    }

    private enum Outcome: Sendable {
        case finished(GenerationResult)
        case failed(LLMError)
        case cancelled
        case cancelledBeforeStart
    }

    /// Runs the generation until it finishes, the user cancels the turn, or the turn's
    /// deadline passes — whichever comes first ends the others.
    private func generate(
        _ prompt: [PromptMessage], for turn: TurnEnvelope, onProgress: @escaping @Sendable (GenerationProgress) async -> Void
    ) async -> Outcome {
        let cancelled = cancellations.begin(turn.turnID, session: turn.sessionID)
        defer { cancellations.end(turn.turnID) }
        if cancelled.isOpen { return .cancelledBeforeStart }
        let generator = self.generator
        return await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                do throws(LLMError) {
                    return .finished(try await generator.generate(prompt, onProgress: onProgress))
                } catch {
                    return .failed(error)
                }
            }
            group.addTask {
                await cancelled.wait()
                return cancelled.isOpen ? .cancelled : nil
            }
            if let deadline = turn.deadline {
                group.addTask {
                    let remaining = max(0, deadline.timeIntervalSinceNow)
                    try? await Task.sleep(for: .milliseconds(Int64(remaining * 1000)))
                    return Task.isCancelled ? nil : .failed(.unavailable("no answer before the turn's deadline"))
                }
            }
            defer { group.cancelAll() }
            for await outcome in group {
                if let outcome { return outcome }
            }
            return .failed(.cancelled)
        }
    }

    private func done(
        _ turn: TurnEnvelope, _ message: ChatMessage, usage: TokenUsage = TokenUsage(), cancelled: Bool = false, completed: Bool = false,
        model: String? = nil
    ) -> ReplyEnvelope.Done {
        ReplyEnvelope.Done(
            sessionID: turn.sessionID, turnID: turn.turnID, message: message,
            status: completed ? SessionRecord.Status.completed.rawValue : SessionRecord.Status.active.rawValue,
            completed: completed, usage: usage, cancelled: cancelled, model: model
        )
    }

    private func failure(_ turn: TurnEnvelope, code: String, _ message: String) -> ReplyEnvelope {
        .error(ReplyEnvelope.Failure(sessionID: turn.sessionID, turnID: turn.turnID, code: code, message: message))
    }
}
