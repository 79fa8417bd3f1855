import Foundation
import Logging
import Synchronization

/// The outbound side of one WebSocket (or of one waiting REST request): a bounded
/// queue of frames that the socket's writer task drains, so a slow client never
/// blocks anybody else.
/// When half the queue is taken, `delta` frames for this socket are dropped (the
/// client sees a gap in `index`); replies and errors still go in, and the reply
/// carries the whole text.
///
/// While a `resume` reads history the outbox can be *held*: live frames wait, and
/// the history goes out first, so a client never sees a reply before the history
/// that precedes it, nor twice.
final class SocketOutbox: Sendable {
    let id = UUID()
    let userID: String
    let frames: AsyncStream<ServerFrame>
    private let continuation: AsyncStream<ServerFrame>.Continuation
    private let held = Mutex<[ServerFrame]?>(nil)
    /// Frames queued and not yet written.
    private let pending = Atomic<Int>(0)
    private let capacity: Int
    private let logger: Logger

    init(userID: String, capacity: Int, logger: Logger) {
        self.userID = userID
        self.capacity = capacity
        (frames, continuation) = AsyncStream.makeStream(of: ServerFrame.self, bufferingPolicy: .bufferingOldest(capacity))
        self.logger = logger
    }

    func send(_ frame: ServerFrame) {
        let write = held.withLock { held -> Bool in
            guard held != nil else { return true }
            if held!.count < capacity { held!.append(frame) }
            return false
        }
        if write { enqueue(frame) }
    }

    /// Live frames wait from now until `release`.
    func hold() {
        held.withLock { $0 = $0 ?? [] }
    }

    /// Sends `first`, then the frames that waited — except replies of `session` that
    /// `first` already contains (message id up to `coveredUpTo`).
    func release(first: ServerFrame?, session: UUID? = nil, coveredUpTo lastID: Int64? = nil) {
        let waiting = held.withLock { held -> [ServerFrame] in
            defer { held = nil }
            return held ?? []
        }
        if let first { enqueue(first) }
        for frame in waiting {
            if case .reply(let done) = frame, done.sessionID == session, let lastID, done.message.id <= lastID { continue }
            enqueue(frame)
        }
    }

    /// The writer wrote one frame.
    func didWrite() {
        pending.subtract(1, ordering: .relaxed)
    }

    /// Ends the writer task once the queued frames are written.
    func finish() {
        continuation.finish()
    }

    private func enqueue(_ frame: ServerFrame) {
        if frame.isDroppable, pending.load(ordering: .relaxed) >= capacity / 2 {
            logger.debug("socket reads slowly; dropped a delta", metadata: ["socket_id": "\(id)"])
            return
        }
        pending.add(1, ordering: .relaxed)
        if case .dropped = continuation.yield(frame) {
            pending.subtract(1, ordering: .relaxed)
            logger.warning("socket is not reading; dropped a frame", metadata: ["socket_id": "\(id)"])
        }
    }
}
