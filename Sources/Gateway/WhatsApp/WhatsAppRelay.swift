import Foundation
import Logging
import ParleySupport
import ServiceLifecycle
import Shared

/// Answers the WhatsApp messages the webhook stored: claims each (the oldest unfinished
/// message of its sender, so a sender's messages go one at a time and in order), takes
/// it through its states and writes each step before the next —
///
/// `received` → (a voice note transcribed) → `submitted`: a turn of the sender's
/// session, whose id is derived from the message id → `answered`: the reply, from the
/// turn or read from the store → `sent`: posted to the Graph API, part by part.
///
/// A message taken up again (a restart, a lost claim, a failed step) goes on from the
/// step it was written at: a `submitted` message first asks the store where its turn
/// stands, so a turn that may still be answered is never sent as a second one, and a
/// turn that ended unanswered (an error, withdrawn, past its deadline) is followed by a
/// new one (a new id), at most `maxSubmissions` in all. The one repeat it cannot rule
/// out: a reply part posted just before a crash and not yet written as sent is posted
/// again (the Graph API takes no idempotency key).
struct WhatsAppRelay: Service {
    let inbox: any WhatsAppInbox
    let graph: any WhatsAppGraph
    let transcriber: (any SpeechTranscriber)?
    let sessions: ChatterSessions
    let turns: TurnWaiter
    let contentDecoder: ClientFrameDecoder
    let settings: WhatsAppSettings.CloudAPI
    var pollInterval: Duration = .milliseconds(250)
    /// How long a claim lasts without renewal (`WHATSAPP_CLAIM_SECONDS`); renewed at a
    /// third of it while working.
    var lease: Duration { settings.claimLease }
    var maxSubmissions = 3
    /// Transcription attempts before a voice note is answered with a request to write.
    var maxTranscriptionAttempts = 6
    var backlogInterval: Duration = .seconds(15)
    let logger: Logger

    /// What one step did with a message.
    enum Step: Sendable, Equatable {
        /// Written; go on from its new state (finished: done).
        case next(WhatsAppMessage)
        /// Give the claim up; due again after the delay.
        case retry(after: Duration, error: String)
        /// The claim is lost (another relay has the message now), or the gateway stops.
        case stop
    }

    func run() async {
        let running = Locked(0)
        var lastBacklog = ContinuousClock.now - backlogInterval
        await withDiscardingTaskGroup { group in
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                if ContinuousClock.now - lastBacklog >= backlogInterval {
                    lastBacklog = .now
                    if let backlog = try? await inbox.backlog() { ParleyMetrics.whatsappBacklog.set(backlog) }
                }
                let free = settings.concurrency - running.value
                var claimed: [WhatsAppMessage] = []
                if free > 0 {
                    do {
                        claimed = try await inbox.claim(limit: free, lease: lease)
                    } catch {
                        logger.warning("cannot read the WhatsApp messages", metadata: ["error": "\(error)"])
                    }
                }
                for message in claimed {
                    running.withLock { $0 += 1 }
                    group.addTask {
                        await process(message)
                        running.withLock { $0 -= 1 }
                    }
                }
                if claimed.isEmpty || claimed.count == free {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pollInterval) }
                }
            }
        }
    }

    /// Takes a claimed message as far as it goes now, renewing the claim meanwhile.
    func process(_ claimed: WhatsAppMessage) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var message = claimed
                while true {
                    switch await advance(message) {
                    case .next(let next):
                        guard !next.state.isFinished else { return }
                        message = next
                    case .retry(let delay, let error):
                        do {
                            try await inbox.release(message, error: error, retryIn: delay)
                        } catch {
                            logger(of: message).warning(
                                "could not put a WhatsApp message back; it is due when its claim ends",
                                metadata: ["error": "\(error)"]
                            )
                        }
                        return
                    case .stop:
                        return
                    }
                }
            }
            group.addTask {
                // A claim found lost ends the work (the group cancels it): another relay
                // has the message, and must be the only one to post its reply.
                while true {
                    try? await Task.sleep(for: lease / 3)
                    guard !Task.isCancelled else { return }
                    if (try? await inbox.renew(claimed, lease: lease)) == false {
                        logger(of: claimed).warning("lost the claim on a WhatsApp message while working on it; stopping")
                        return
                    }
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// One step from the message's state.
    func advance(_ message: WhatsAppMessage) async -> Step {
        switch message.state {
        case .received: await prepare(message)
        case .submitted: await ask(message)
        case .answered: await deliver(message)
        case .sent, .failed: .stop
        }
    }

    // MARK: Steps

    /// `received`: the text (a voice note transcribed), checked, and the sender's session.
    private func prepare(_ message: WhatsAppMessage) async -> Step {
        var message = message
        var text = message.inbound.text
        switch message.inbound.kind {
        case .unsupported:
            return await answer(message, with: WhatsAppText.unsupported)
        case .audio where text == nil:
            switch await transcription(of: message) {
            case .success(let heard):
                text = heard
                message.inbound.text = heard
            case .failure(let instead):
                return instead.step
            }
        case .text, .audio:
            break
        }
        let content: String
        do {
            content = try contentDecoder.checkedContent(text ?? "", clientMessageID: nil)
        } catch {
            return await answer(
                message,
                with: error.code == .emptyContent ? WhatsAppText.emptyMessage : WhatsAppText.notAnswered(error.code, error.message)
            )
        }
        message.inbound.text = content
        do {
            message.sessionID = try await sessions.session(of: ChatterSessions.userID(whatsApp: message.inbound.sender))
        } catch {
            return .retry(after: settings.retryDelay(afterAttempt: message.attempts), error: "\(error.code.rawValue): \(error.message)")
        }
        message.turnID = WhatsAppTurnID.of(messageID: message.inbound.messageID, attempt: message.attempts)
        message.state = .submitted
        return await saved(message)
    }

    /// A voice note's text, or the step to take instead (retry, or an answer asking to write).
    private func transcription(of message: WhatsAppMessage) async -> Result<String, StepInstead> {
        guard let transcriber, let mediaID = message.inbound.mediaID else {
            return .failure(StepInstead(await answer(message, with: WhatsAppText.voiceNotesOff)))
        }
        do throws(GraphError) {
            let media = try await graph.media(id: mediaID)
            let audio = try await graph.download(media, limit: settings.maxAudioBytes)
            let text = try await transcriber.transcribe(audio, mimeType: media.mimeType)
            logger(of: message).info("voice note transcribed", metadata: ["audio_bytes": "\(audio.count)"])
            return .success(text)
        } catch .rejected(status: 413, _) {
            let megabytes = max(settings.maxAudioBytes / (1024 * 1024), 1)
            return .failure(StepInstead(await answer(message, with: WhatsAppText.voiceNoteRefused("it is longer than \(megabytes) MB"))))
        } catch let error where error.isTransient && message.attempts < maxTranscriptionAttempts {
            logger(of: message).warning("cannot transcribe a voice note yet; will retry", metadata: ["error": "\(error)"])
            return .failure(StepInstead(.retry(after: settings.retryDelay(afterAttempt: message.attempts), error: "transcription: \(error)")))
        } catch {
            logger(of: message).error("cannot transcribe a voice note", metadata: ["error": "\(error)"])
            return .failure(StepInstead(await answer(message, with: WhatsAppText.voiceNoteRefused("it could not be fetched or transcribed"))))
        }
    }

    /// `submitted`: the turn's reply — stored already, or asked for (again).
    private func ask(_ message: WhatsAppMessage) async -> Step {
        guard let sessionID = message.sessionID, let turnID = message.turnID, let content = message.inbound.text else {
            var message = message
            message.state = .received
            return await saved(message)
        }
        let standing: TurnStanding
        do {
            standing = try await inbox.standing(ofTurn: turnID)
        } catch {
            return .retry(after: settings.retryDelay(afterAttempt: message.attempts), error: "store: \(error)")
        }
        switch standing {
        case .answered(let reply):
            return await answer(message, with: reply)
        case .ended:
            return await resubmit(message, because: "its turn ended unanswered", counted: true, newSession: false)
        case .withdrawn:
            // Never in the broker (a refused publish): asking again costs nothing, and
            // does not count against the message's turns.
            return await resubmit(message, because: "its turn was not taken by the broker", counted: false, newSession: false)
        case .open, .unknown:
            break
        }
        let userID = ChatterSessions.userID(whatsApp: message.inbound.sender)
        let turn: TurnWaiter.StartedTurn
        do {
            turn = try turns.start(.message, content: content, to: sessionID, userID: userID, channel: .whatsapp, turnID: turnID)
        } catch {
            return .retry(after: .seconds(1), error: "\(error.code.rawValue): \(error.message)")
        }
        guard let result = await follow(turn) else {
            // The gateway stops: the turn goes on if it was sent; another gateway (or
            // this one after its restart) takes the message up and reads its reply.
            await turns.abandon(turn)
            return .retry(after: .zero, error: "the gateway stopped while the turn was answered")
        }
        switch result {
        case .success(let done):
            return await answer(message, with: done.message.content)
        case .failure(let error):
            switch error.code {
            case .sessionCompleted, .sessionNotFound, .forbidden:
                return await resubmit(message, because: "the session took no more messages (\(error.code.rawValue))", counted: true, newSession: true)
            case .contentTooLong, .invalidContent, .emptyContent, .llmBlocked:
                return await answer(message, with: WhatsAppText.notAnswered(error.code, error.message))
            default:
                logger(of: message).warning("a WhatsApp message's turn failed; will ask again", metadata: ["code": "\(error.code.rawValue)"])
                return .retry(after: settings.retryDelay(afterAttempt: message.attempts), error: "\(error.code.rawValue): \(error.message)")
            }
        }
    }

    /// The turn certainly ended unanswered: a new turn (a new id) after the retry delay,
    /// or the apology when the message has had its turns (`counted` ones).
    private func resubmit(_ message: WhatsAppMessage, because reason: String, counted: Bool, newSession: Bool) async -> Step {
        var message = message
        if counted {
            guard message.submissions + 1 < maxSubmissions else {
                logger(of: message).error("a WhatsApp message was not answered after its last turn", metadata: ["reason": "\(reason)"])
                let code = message.lastError.flatMap { ErrorCode(rawValue: String($0.prefix { $0 != ":" })) } ?? .unavailable
                return await answer(message, with: WhatsAppText.notAnswered(code, code.message))
            }
            message.submissions += 1
        }
        logger(of: message).info("asking again with a new turn", metadata: ["reason": "\(reason)"])
        if newSession {
            message.sessionID = nil
            message.state = .received
        } else {
            message.turnID = WhatsAppTurnID.of(messageID: message.inbound.messageID, attempt: message.attempts)
        }
        guard case .next(let saved) = await saved(message) else { return .stop }
        return .retry(after: settings.retryDelay(afterAttempt: saved.attempts), error: reason)
    }

    /// `answered`: the reply's parts posted, from the first one not sent yet.
    private func deliver(_ message: WhatsAppMessage) async -> Step {
        var message = message
        let reply = message.reply ?? ""
        let parts = WhatsAppText.parts(of: reply.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? WhatsAppText.noAnswer : reply)
        while message.partsSent < parts.count {
            // Only the claim's holder posts: a relay whose claim ran out while the
            // database did not answer must not post next to the one that took it over.
            guard (try? await inbox.renew(message, lease: lease)) == true else {
                logger(of: message).warning("the claim on a WhatsApp message is lost or cannot be checked; not posting its reply")
                return .stop
            }
            do throws(GraphError) {
                try await graph.send(text: parts[message.partsSent], to: message.inbound.sender, from: message.inbound.phoneNumberID)
                ParleyMetrics.whatsappReplies.increment(by: 1, [("outcome", "sent")])
            } catch {
                if error.isTransient || error.isGraphConfigurationOrThrottling {
                    ParleyMetrics.whatsappReplies.increment(by: 1, [("outcome", "failed")])
                    if error.isTransient {
                        logger(of: message).warning("the Graph API did not take a reply; will retry", metadata: ["error": "\(error)"])
                    } else {
                        logger(of: message).error(
                            "the Graph API refused the access token or throttles it; will retry (check WHATSAPP_ACCESS_TOKEN)",
                            metadata: ["error": "\(error)"]
                        )
                    }
                    return .retry(after: settings.retryDelay(afterAttempt: message.attempts), error: "graph: \(error)")
                }
                ParleyMetrics.whatsappReplies.increment(by: 1, [("outcome", "refused")])
                logger(of: message).error("the Graph API refused a reply; it is not sent", metadata: ["error": "\(error)"])
                message.state = .failed
                message.lastError = "graph: \(error)"
                return await saved(message)
            }
            message.partsSent += 1
            if message.partsSent < parts.count {
                // Written before the next part: a step that cannot be written ends here,
                // and the parts sent are not sent again.
                let step = await saved(message)
                guard case .next = step else { return step }
            }
        }
        message.state = .sent
        logger(of: message).info("WhatsApp reply sent", metadata: ["parts": "\(parts.count)"])
        return await saved(message)
    }

    // MARK: Helpers

    /// The step that replaces a voice note's text when it has none.
    struct StepInstead: Error {
        let step: Step
        init(_ step: Step) { self.step = step }
    }

    private func answer(_ message: WhatsAppMessage, with reply: String) async -> Step {
        var message = message
        message.reply = reply
        message.partsSent = 0
        message.state = .answered
        return await saved(message)
    }

    /// Writes the message; `.stop` when the claim was lost, a retry when the database fails.
    private func saved(_ message: WhatsAppMessage) async -> Step {
        do {
            guard try await inbox.save(message) else {
                logger(of: message).warning("lost the claim on a WhatsApp message; another relay has it")
                return .stop
            }
            return .next(message)
        } catch {
            return .retry(after: settings.retryDelay(afterAttempt: message.attempts), error: "store: \(error)")
        }
    }

    /// The turn's end, or nil when the gateway stops first (or the work is cancelled).
    private func follow(_ turn: TurnWaiter.StartedTurn) async -> Result<ReplyEnvelope.Done, ClientError>? {
        try? await cancelWhenGracefulShutdown {
            for await event in turn.events {
                if case .finished(let result) = event { return result }
            }
            return nil
        }
    }

    private func logger(of message: WhatsAppMessage) -> Logger {
        var logger = self.logger
        logger[metadataKey: "whatsapp_message_id"] = "\(message.inbound.messageID)"
        if let sessionID = message.sessionID { logger[metadataKey: "session_id"] = "\(sessionID.lowercased)" }
        if let turnID = message.turnID { logger[metadataKey: "turn_id"] = "\(turnID.lowercased)" }
        return logger
    }
}
