import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import Synchronization

/// The sockets of one session in `parley-load sockets`: the first starts the session,
/// the others attach to it with `resume`; on the signal the first sends one turn, and
/// every socket records when the reply reaches it.
final class FanoutGroup: Sendable {
    final class Phases: Sendable {
        /// Fired when every socket is open and attached: the turns may go.
        let fanout: Signal
        /// When the first group sends its turn; group n sends n/rate seconds later.
        let fanoutStart: Mutex<ContinuousClock.Instant?>
        let turnsPerSecond: Double
        /// Fired at the end: every socket closes.
        let done: Signal

        init(turnsPerSecond: Double) {
            fanout = Signal()
            fanoutStart = Mutex(nil)
            self.turnsPerSecond = turnsPerSecond
            done = Signal()
        }
    }

    let index: Int
    let sockets: Int
    let url: String
    let token: String?
    let recorder: FanoutRecorder
    let phases: Phases
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    /// The session the first socket started.
    private let startedSession = Mutex<String?>(nil)
    /// Fired when the session's opening has arrived (or the first socket failed).
    private let ready = Signal()

    init(
        index: Int,
        sockets: Int,
        url: String,
        token: String?,
        recorder: FanoutRecorder,
        phases: Phases,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) {
        self.index = index
        self.sockets = sockets
        self.url = url
        self.token = token
        self.recorder = recorder
        self.phases = phases
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for socket in 0..<sockets {
                group.addTask { await self.socket(socket) }
            }
        }
    }

    private func socket(_ socket: Int) async {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        let configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20, additionalHeaders: headers)
        let first = socket == 0
        if !first { await ready.wait() }
        let sessionID = startedSession.withLock { $0 }
        if !first, sessionID == nil { return }
        let (recorder, phases, index) = (self.recorder, self.phases, self.index)
        do {
            try await WebSocketClient.connect(url: url, configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger) {
                inbound,
                outbound,
                _ in
                recorder.opened()
                try await outbound.write(.text(first ? ClientFrameText.start(requestID: "s") : ClientFrameText.resume(session: sessionID ?? "")))
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await self.read(inbound, first: first) }
                    if first {
                        await phases.fanout.wait()
                        let start = phases.fanoutStart.withLock { $0 } ?? .now
                        try await Task.sleep(until: start + .seconds(Double(index) / phases.turnsPerSecond))
                        if let id = self.startedSession.withLock({ $0 }) {
                            recorder.sent(session: id, at: recorder.now())
                            try await outbound.write(.text(ClientFrameText.message(session: id, clientMessageID: "f", content: #""fan out""#)))
                        }
                    }
                    await phases.done.wait()
                    try await outbound.close(.normalClosure, reason: nil)
                    try await tasks.waitForAll()
                }
            }
        } catch {
            recorder.failed(String(describing: error))
            if first { ready.fire() }
        }
    }

    private func read(_ inbound: WebSocketInboundStream, first: Bool) async throws {
        let decoder = JSONDecoder()
        for try await message in inbound.messages(maxSize: 1 << 20) {
            guard case .text(let text) = message, let frame = try? decoder.decode(ServerFrameHeader.self, from: Data(text.utf8)) else { continue }
            let now = recorder.now()
            switch frame.type {
            case "session" where first:
                startedSession.withLock { $0 = frame.sessionID }
            case "reply" where first && !ready.isFired:
                // The tutor's opening: the session is ready for the other sockets.
                recorder.sessionReady()
                ready.fire()
            case "reply":
                if let id = frame.sessionID { recorder.replied(session: id, at: now) }
            case "history" where !first:
                recorder.listenerAttached()
            case "error":
                recorder.error(frame.code ?? "unknown")
                if first, !ready.isFired { ready.fire() }
            default:
                break
            }
        }
    }
}
