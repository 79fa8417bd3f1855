import AMQPClient
import Foundation
import Logging
import Shared

/// Streams one turn's text to its session as `delta` envelopes (coalesced), and a
/// `reset` envelope when generation starts over after text was already sent.
/// Deltas are transient and unconfirmed: losing one costs nothing, the final reply
/// carries the whole text (and the text held when the stream ends goes only there).
actor DeltaStream {
    private let turn: TurnEnvelope
    private let publisher: AMQPPublisher
    private let topology: ParleyTopology
    private let logger: Logger
    private var coalescer: DeltaCoalescer
    private var index = 0
    private var sentText = false

    init(turn: TurnEnvelope, publisher: AMQPPublisher, topology: ParleyTopology, coalescer: DeltaCoalescer, logger: Logger) {
        self.turn = turn
        self.publisher = publisher
        self.topology = topology
        self.coalescer = coalescer
        self.logger = logger
    }

    func handle(_ progress: GenerationProgress) async {
        switch progress {
        case .text(let piece):
            if let text = coalescer.add(piece, now: .now) { await sendDelta(text) }
        case .reset(let reason):
            await restart(because: reason)
        case .voidEarlierAttempt(let reason):
            coalescer.discard()
            sentText = false
            await send(.reset(.init(sessionID: turn.sessionID, turnID: turn.turnID, reason: reason)))
        }
    }

    /// The stream is over and the final reply, which holds the whole text, follows at
    /// once: what is still held is dropped rather than sent as a delta a moment before
    /// it (a broker message, a hop in worker and gateway and a frame a socket, for
    /// nothing). Deltas are therefore a prefix of the reply, not all of it.
    func finish() {
        coalescer.discard()
    }

    /// The turn is generated again (a retry after an outage): void what was sent.
    func restart(because reason: String) async {
        coalescer.discard()
        guard sentText else { return }
        sentText = false
        await send(.reset(.init(sessionID: turn.sessionID, turnID: turn.turnID, reason: reason)))
    }

    private func sendDelta(_ text: String) async {
        let delta = ReplyEnvelope.Delta(sessionID: turn.sessionID, turnID: turn.turnID, index: index, text: text)
        index += 1
        sentText = true
        await send(.delta(delta))
    }

    private func send(_ envelope: ReplyEnvelope) async {
        do {
            try await publisher.send(topology.message(for: envelope))
        } catch {
            logger.debug("a streamed delta was not sent", metadata: ["error": "\(error)"])
        }
    }
}
