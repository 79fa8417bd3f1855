import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import Synchronization

/// One simulated person: a socket, its sessions, and its turns as the plan paces them.
struct LoadClient: Sendable {
    let index: Int
    let plan: LoadPlan
    let token: String?
    let recorder: LoadRecorder
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger

    func run() async {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        let configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20, additionalHeaders: headers)
        do {
            try await WebSocketClient.connect(url: plan.url, configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger) {
                inbound,
                outbound,
                _ in
                recorder.connected()
                try await Session(plan: plan, recorder: recorder, outbound: outbound).drive(inbound)
            }
        } catch {
            recorder.connectFailed(String(describing: error))
        }
    }
}

extension LoadClient {
    /// The socket once it is open.
    private final class Session: Sendable {
        let plan: LoadPlan
        let recorder: LoadRecorder
        let outbound: WebSocketOutboundWriter
        let state = Mutex(ConnectionState())

        init(plan: LoadPlan, recorder: LoadRecorder, outbound: WebSocketOutboundWriter) {
            self.plan = plan
            self.recorder = recorder
            self.outbound = outbound
        }

        func drive(_ inbound: WebSocketInboundStream) async throws {
            for serial in 0..<plan.sessionsPerClient {
                try await outbound.write(.text(ClientFrameText.start(requestID: "s\(serial)")))
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.endOfRun() }
                if case .open(let rate) = plan.pace {
                    group.addTask { try await self.sendOpenLoop(turnsPerSecond: rate) }
                }
                var frames = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                let decoder = JSONDecoder()
                while let message = try await frames.next() {
                    guard case .text(let text) = message, let frame = try? decoder.decode(ServerFrameHeader.self, from: Data(text.utf8)) else {
                        continue
                    }
                    if let freeSession = handle(frame, text: text, at: recorder.now()) { try await next(on: freeSession, group: &group) }
                    if state.withLock({ $0.stopping && $0.isIdle }) { break }
                }
                let code = state.withLock { $0.stopping } ? "no_reply" : "socket_closed"
                for finished in state.withLock({ $0.abandonAll(code: code, at: recorder.now()) }) { recorder.finished(finished.timing) }
                group.cancelAll()
            }
        }

        /// Takes one frame in; returns the session that is free for its next turn.
        private func handle(_ frame: ServerFrameHeader, text: String, at now: Int64) -> String? {
            switch frame.type {
            case "session":
                guard let id = frame.sessionID else { return nil }
                state.withLock { $0.sessionStarted(id) }
                recorder.sessionStarted()
            case "accepted":
                state.withLock { $0.accepted(clientMessageID: frame.clientMessageID, turnID: frame.turnID, at: now) }
            case "delta":
                state.withLock { $0.delta(turnID: frame.turnID, at: now) }
            case "reply":
                switch state.withLock({ $0.reply(turnID: frame.turnID, session: frame.sessionID, at: now) }) {
                case .finished(let finished):
                    recorder.finished(finished.timing)
                    return finished.session
                case .opening(let session):
                    return session
                case .unexpected:
                    recorder.unexpectedReply(text)
                }
            case "error":
                let code = frame.code ?? "unknown"
                let ended = state.withLock {
                    $0.error(code: code, clientMessageID: frame.clientMessageID, turnID: frame.turnID, at: now)
                }
                if let ended {
                    recorder.finished(ended.timing)
                    return ended.session
                }
                recorder.otherError(code: code, start: frame.requestID != nil)
            default:
                break
            }
            return nil
        }

        /// The closed loop's next turn on a session that is free.
        private func next(on session: String, group: inout ThrowingTaskGroup<Void, any Error>) async throws {
            guard case .closed(let think) = plan.pace, !state.withLock({ $0.stopping }) else { return }
            if think == .zero {
                try await send(on: session, dueAt: nil)
            } else {
                group.addTask {
                    try await Task.sleep(for: think)
                    guard !self.state.withLock({ $0.stopping }) else { return }
                    try await self.send(on: session, dueAt: nil)
                }
            }
        }

        private func send(on session: String, dueAt: Int64?) async throws {
            let sentAt = dueAt ?? recorder.now()
            let id = state.withLock { $0.sending(on: session, at: sentAt) }
            recorder.sent()
            try await outbound.write(.text(ClientFrameText.message(session: session, clientMessageID: id, content: plan.content)))
        }

        /// The open loop: turns at a steady rate, spread over the client's sessions,
        /// each timed from when it was due.
        private func sendOpenLoop(turnsPerSecond: Double) async throws {
            let interval = Duration.seconds(1 / turnsPerSecond)
            // Clients start at random phases so that their turns do not come in bursts.
            var due = ContinuousClock.now + interval * Double.random(in: 0..<1)
            var serial = 0
            while due < plan.stopAt {
                try await Task.sleep(until: due)
                let sessions = state.withLock { $0.sessions }
                if !sessions.isEmpty {
                    try await send(on: sessions[serial % sessions.count], dueAt: due.microseconds(since: plan.began))
                    serial += 1
                }
                due += interval
            }
        }

        /// Stops new turns at the end of the run, and closes the socket when its last
        /// turns are answered or the drain time is over.
        private func endOfRun() async throws {
            try await Task.sleep(until: plan.stopAt)
            let idle = state.withLock {
                $0.stopping = true
                return $0.isIdle
            }
            if !idle { try await Task.sleep(until: plan.drainUntil) }
            try await outbound.close(.normalClosure, reason: nil)
        }
    }
}
