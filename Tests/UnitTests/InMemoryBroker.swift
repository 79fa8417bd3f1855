import AMQPClient
import Foundation
import Synchronization

@testable import Gateway
@testable import Shared

/// The gateway's broker boundary in memory: published turns come out of `turns`
/// (a test's stand-in worker reads them), binds and cancels are recorded.
final class InMemoryBroker: TurnPublishing, ReplySubscriptions {
    let turns: AsyncStream<TurnEnvelope>
    private let published: AsyncStream<TurnEnvelope>.Continuation
    let bound = Mutex<Set<UUID>>([])
    let cancelled = Mutex<[UUID]>([])
    /// Turns published so far.
    let publishedCount = Mutex(0)

    init() {
        (turns, published) = AsyncStream.makeStream(of: TurnEnvelope.self)
    }

    func publish(_ turn: TurnEnvelope) async throws(AMQPError) {
        publishedCount.withLock { $0 += 1 }
        published.yield(turn)
    }

    func cancel(turnID: UUID, sessionID: UUID) async throws(AMQPError) {
        cancelled.withLock { $0.append(turnID) }
    }

    func subscribe(session: UUID) async throws(AMQPError) {
        bound.withLock { _ = $0.insert(session) }
    }

    func unsubscribe(session: UUID) async throws(AMQPError) {
        bound.withLock { _ = $0.remove(session) }
    }
}

/// A worker in a few lines: answers every published turn — stores it, streams two
/// deltas and the reply — through the store and the pipeline the gateway uses.
struct EchoWorker {
    let broker: InMemoryBroker
    let store: any ConversationStore
    let pipeline: TurnPipeline

    func run() async {
        for await turn in broker.turns {
            let text = turn.kind == .start ? "Olá! Vamos começar?" : "eco: \(turn.content)"
            let completed = CompletedTurn(
                sessionID: turn.sessionID,
                turnID: turn.turnID,
                userContent: turn.kind == .start ? nil : turn.content,
                replyContent: text,
                rawReply: text,
                model: "echo",
                usage: .init(),
                latencyMilliseconds: 1
            )
            guard let stored = try? await store.record(completed) else { continue }
            await pipeline.deliver(.delta(.init(sessionID: turn.sessionID, turnID: turn.turnID, index: 0, text: String(text.prefix(4)))))
            await pipeline.deliver(.delta(.init(sessionID: turn.sessionID, turnID: turn.turnID, index: 1, text: String(text.dropFirst(4)))))
            await pipeline.deliver(
                .done(
                    .init(sessionID: turn.sessionID, turnID: turn.turnID, message: stored.message, status: "active", completed: false, usage: .init())
                )
            )
        }
    }
}
