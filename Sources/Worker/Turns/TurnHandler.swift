import Foundation
import Logging
import ParleySupport
import ServiceLifecycle
import Shared

/// Answers one turn: from the database when it was answered before (a redelivery),
/// otherwise — once the `TurnLedger` lets this attempt generate it, that is when the
/// session's earlier turns are done — by generating the answer, streamed to
/// `onProgress` as it comes, and storing user message and reply together. Problems the
/// user must hear about become an `error` reply; the others are thrown (`TurnFailure`).
struct TurnHandler: Sendable {
    let store: any ConversationStore
    let holding: TurnHolding
    let generator: ProviderChain
    let prompts: PromptBuilder
    let cancellations: TurnCancellations
    /// Reads and takes a turn as it arrives; nil: the store's and the ledger's calls
    /// one by one (`StepwiseTurnOpener`). The worker's is `PostgresTurnOpener`.
    var opener: (any TurnOpener)?
    /// The model writes it when the learner has mastered the topic; no client sees it.
    var completionMarker = PromptBuilder.defaultCompletionMarker

    func reply(
        to turn: TurnEnvelope,
        attempt: TurnAttempt = TurnAttempt(),
        logger: Logger,
        onProgress: @escaping @Sendable (GenerationProgress) async -> Void = { _ in }
    ) async throws(TurnFailure) -> ReplyEnvelope {
        // The session, a reply stored before (a redelivery) and, when the turn may be
        // generated now, the turn taken with its prompt's material: one read.
        let opener = self.opener ?? StepwiseTurnOpener(store: store, ledger: holding.ledger)
        let (historyLimit, holdFor) = (prompts.maxHistory, holding.holdFor)
        let opening = try await fromStore {
            try await opener.open(turn, attempt: attempt.ledger, holdFor: holdFor, historyLimit: historyLimit, mayTake: !turn.isExpired())
        }
        let start = opening.start
        if let stored = start.storedReply {
            logger.info("turn was answered before; replying from the database")
            return .done(done(turn, stored, completed: start.session?.status == .completed))
        }
        if turn.isExpired() {
            return try await failure(turn, attempt, code: .expired, "the message waited past its deadline and was not answered; send it again")
        }
        guard let session = start.session else {
            return try await failure(turn, attempt, code: .sessionNotFound, "session \(turn.sessionID.lowercased) does not exist")
        }
        guard session.userID == turn.userID else {
            return try await failure(turn, attempt, code: .forbidden, "session \(turn.sessionID.lowercased) belongs to another user")
        }
        guard session.status == .active else {
            return try await failure(
                turn,
                attempt,
                code: .sessionCompleted,
                "session \(turn.sessionID.lowercased) is \(session.status.rawValue) and takes no more messages"
            )
        }
        if let taken = opening.taken {
            return try await answer(turn, attempt, number: taken.attemptNumber, material: taken.material, logger: logger, onProgress: onProgress)
        }
        switch try await admit(turn, attempt, logger: logger) {
        case .answer(let reply):
            return reply
        case .generate(let attemptNumber):
            // Since the opening read the session, the turn before this one may have
            // completed it (this turn waited for it, or it ended just before the claim).
            if try await fromStore({ try await store.session(id: turn.sessionID) })?.status != .active {
                return try await failure(
                    turn,
                    attempt,
                    code: .sessionCompleted,
                    "session \(turn.sessionID.lowercased) was completed before this message was answered"
                )
            }
            return try await answer(turn, attempt, number: attemptNumber, material: nil, logger: logger, onProgress: onProgress)
        }
    }

    // MARK: Steps

    private enum Admission {
        case generate(attemptNumber: Int)
        case answer(ReplyEnvelope)
    }

    /// Waits until the ledger lets this attempt generate the turn: the session's
    /// earlier turns (sent through any gateway) are done and no other attempt holds it.
    private func admit(_ turn: TurnEnvelope, _ attempt: TurnAttempt, logger: Logger) async throws(TurnFailure) -> Admission {
        var pause = Backoff(initial: .milliseconds(20), maximum: holding.longestWaitPause)
        var waited = false
        while true {
            let claim = try await fromStore { try await holding.ledger.claim(turn, attempt: attempt.ledger, holdFor: holding.holdFor) }
            switch claim {
            case .granted(let number):
                if waited { logger.info("the session's earlier turn is done; generating this one") }
                return .generate(attemptNumber: number)
            case .settled(.answered, _):
                // Answered by another attempt since we looked.
                guard let stored = try await storedReply(of: turn) else { throw .superseded }
                return .answer(stored)
            case .settled(.failed, let failure?):
                // Ended with an error reply whose publish may have failed: send it (again;
                // the gateway drops a duplicate).
                return .answer(.error(.init(sessionID: turn.sessionID, turnID: turn.turnID, code: failure.code, message: failure.message)))
            case .settled(let state, _):
                throw .alreadySettled(state)
            case .waitForEarlierTurn, .heldByAnotherAttempt:
                if !waited {
                    let reason = claim == .waitForEarlierTurn ? "an earlier turn of the session is not done" : "another attempt holds this turn"
                    logger.info("waiting before generating", metadata: ["reason": "\(reason)"])
                }
                waited = true
                if turn.isExpired() {
                    return .answer(
                        try await failure(turn, attempt, code: .expired, "the message waited past its deadline and was not answered; send it again")
                    )
                }
                guard attempt.isCurrent() else { throw .superseded }
                // Stopping: waiting turns go back to the queue at once.
                guard !Task.isShuttingDownGracefully else { throw .interrupted }
                do {
                    try await Task.sleep(for: pause.next())
                } catch {
                    throw .interrupted
                }
            }
        }
    }

    /// Generates, stores and returns the answer of a turn this attempt holds (its
    /// `number`th attempt), from `material` read when it was taken, or read now.
    private func answer(
        _ turn: TurnEnvelope,
        _ attempt: TurnAttempt,
        number: Int,
        material given: PromptMaterial?,
        logger: Logger,
        onProgress: @escaping @Sendable (GenerationProgress) async -> Void
    ) async throws(TurnFailure) -> ReplyEnvelope {
        if number > 1 {
            // An earlier attempt may have streamed text: the client drops it.
            await onProgress(.voidEarlierAttempt(reason: "an earlier attempt at this message was interrupted"))
        }
        let material: PromptMaterial
        if let given {
            material = given
        } else {
            let historyLimit = prompts.maxHistory
            material = try await fromStore { try await store.promptMaterial(session: turn.sessionID, historyLimit: historyLimit) }
        }
        let (history, context) = (material.history, material.context ?? SessionContext())
        // A marker the user typed must complete nothing: the model never sees it
        // (it could echo it back), and history keeps the message without it.
        var asked = turn
        // Until none is left: `{TOPIC_{TOPIC_COMPLETED}COMPLETED}` must not become one.
        while !completionMarker.isEmpty, asked.content.contains(completionMarker) {
            asked.content = asked.content.replacingOccurrences(of: completionMarker, with: "")
        }
        // This turn's own marker: what the model writes to complete the topic.
        let marker = TurnMarker.make(from: completionMarker)
        var turnPrompts = self.prompts
        turnPrompts.completionMarker = marker
        let started = ContinuousClock.now
        let shown = ShownText(marker: marker, publicMarker: completionMarker)
        let outcome = await generate(turnPrompts.prompt(history: history, turn: asked, context: context), for: turn, attempt) { progress in
            switch progress {
            case .text(let piece):
                let visible = shown.feed(piece)
                if !visible.isEmpty { await onProgress(.text(visible)) }
            case .reset, .voidEarlierAttempt:
                shown.reset()
                await onProgress(progress)
            }
        }
        var record = CompletedTurn(
            sessionID: turn.sessionID,
            turnID: turn.turnID,
            userContent: turn.kind == .message ? asked.content : nil,
            replyContent: "",
            rawReply: "",
            model: generator.primary.model,
            usage: TokenUsage(),
            latencyMilliseconds: started.duration(to: .now).wholeMilliseconds
        )
        record.attempt = attempt.id
        switch outcome {
        case .superseded:
            throw .superseded
        case .interrupted:
            throw .interrupted
        case .failed(let error):
            logger.warning("the model failed", metadata: ["error": "\(error)", "code": "\(error.code)"])
            return try await failure(turn, attempt, code: error.code, error.clientMessage)
        case .cancelledBeforeStart:
            return try await failure(turn, attempt, code: .cancelled, "the message was cancelled before an answer was started")
        case .cancelled:
            logger.info("turn cancelled; keeping what was generated")
            record.replyContent = shown.text
            record.rawReply = shown.text
            record.cancelled = true
        case .finished(let result):
            record.fill(with: result, visible: shown.visible(result.completion.text), marker: marker)
            if record.completesSession { logger.info("the learner completed the topic") }
        }
        return try await stored(record, for: turn, attempt, logger: logger)
    }

    /// Stores the answer (fenced by the attempt) and builds the final reply.
    private func stored(
        _ record: CompletedTurn,
        for turn: TurnEnvelope,
        _ attempt: TurnAttempt,
        logger: Logger
    ) async throws(TurnFailure) -> ReplyEnvelope {
        attempt.recordAttempted.withLock { $0 = true }
        let stored = try await fromStore { try await store.record(record) }
        if stored.isNew, record.completesSession { ParleyMetrics.topicCompletions.increment() }
        guard stored.isNew else {
            logger.info("another attempt stored this turn first; replying with its answer")
            let completed = try await fromStore { try await store.session(id: turn.sessionID) }?.status == .completed
            return .done(done(turn, stored.message, completed: completed))
        }
        return .done(
            done(turn, stored.message, usage: record.usage, cancelled: record.cancelled, completed: record.completesSession, model: record.model)
        )
    }

    private func storedReply(of turn: TurnEnvelope) async throws(TurnFailure) -> ReplyEnvelope? {
        let start = try await fromStore { try await store.turnStart(session: turn.sessionID, turn: turn.turnID) }
        guard let stored = start.storedReply else { return nil }
        return .done(done(turn, stored, completed: start.session?.status == .completed))
    }

    private enum Outcome: Sendable {
        case finished(GenerationResult)
        case failed(LLMError)
        case cancelled
        case cancelledBeforeStart
        /// Another attempt took the turn over.
        case superseded
        /// This worker is stopping (its task was cancelled), not the user.
        case interrupted
    }

    /// Runs the generation until it finishes, the user cancels the turn, the turn's
    /// deadline passes or another attempt takes it over — whichever comes first ends
    /// the others.
    private func generate(
        _ prompt: [PromptMessage],
        for turn: TurnEnvelope,
        _ attempt: TurnAttempt,
        onProgress: @escaping @Sendable (GenerationProgress) async -> Void
    ) async -> Outcome {
        let cancelled = cancellations.begin(turn.turnID, session: turn.sessionID)
        defer { cancellations.end(turn.turnID, cancelled) }
        if cancelled.isOpen { return .cancelledBeforeStart }
        let (generator, holding) = (self.generator, self.holding)
        let outcome = await withTaskGroup(of: Outcome?.self) { group in
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
            group.addTask {
                await holding.keep(turn.turnID, attempt) ? nil : .superseded
            }
            if let deadline = turn.deadline {
                group.addTask {
                    try? await Task.sleep(for: .seconds(untrusted: deadline.timeIntervalSinceNow) ?? .zero)
                    return Task.isCancelled ? nil : .failed(.unavailable("no answer before the turn's deadline"))
                }
            }
            defer { group.cancelAll() }
            for await outcome in group {
                if let outcome { return outcome }
            }
            return .failed(.cancelled)
        }
        // Cancelled from outside (the worker's shutdown timeout), not by the user: the
        // turn goes back to the queue instead of being answered `cancelled`.
        return Task.isCancelled ? .interrupted : outcome
    }

    /// An error reply for the client — unless another attempt holds the turn, which
    /// then answers it.
    private func failure(_ turn: TurnEnvelope, _ attempt: TurnAttempt, code: ErrorCode, _ message: String) async throws(TurnFailure) -> ReplyEnvelope
    {
        let failure = SettledFailure(code: code, message: message)
        let ended = try await fromStore {
            try await holding.ledger.settle(turnID: turn.turnID, attempt: attempt.ledger, as: .failed, failure: failure)
        }
        guard ended else { throw .superseded }
        return .error(ReplyEnvelope.Failure(sessionID: turn.sessionID, turnID: turn.turnID, code: code, message: message))
    }

    private func done(
        _ turn: TurnEnvelope,
        _ message: ChatMessage,
        usage: TokenUsage = TokenUsage(),
        cancelled: Bool = false,
        completed: Bool = false,
        model: String? = nil
    ) -> ReplyEnvelope.Done {
        ReplyEnvelope.Done(
            sessionID: turn.sessionID,
            turnID: turn.turnID,
            message: message,
            status: completed ? SessionRecord.Status.completed.rawValue : SessionRecord.Status.active.rawValue,
            completed: completed,
            usage: usage,
            cancelled: cancelled,
            model: model
        )
    }

    /// Runs a call of the store or the ledger (both throw only `StoreError`).
    private func fromStore<T>(_ body: () async throws -> T) async throws(TurnFailure) -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            throw TurnFailure(error)
        } catch {
            throw .store(.unavailable("\(error)"))
        }
    }
}

extension CompletedTurn {
    /// The facts of a finished generation.
    mutating func fill(with result: GenerationResult, visible: String, marker: String) {
        let raw = result.completion.text
        replyContent = visible
        rawReply = raw
        completesSession = !marker.isEmpty && raw.contains(marker)
        model = result.completion.model
        usage = result.completion.usage
        provider = result.provider
        timeToFirstTokenMilliseconds = result.timeToFirstToken?.wholeMilliseconds
        finishReason = result.completion.finishReason
        attempts = result.attempts
    }
}
