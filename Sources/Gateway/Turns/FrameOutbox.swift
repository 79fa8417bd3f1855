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
/// that precedes it, nor twice. Deltas are not held (the reply repeats them); when
/// more replies arrive meanwhile than the hold takes, the client is told after the
/// history (`missed_replies`: resume again from its last message id).
///
/// No reply is dropped silently: a socket that stops reading until its queue is full
/// of replies is *overrun* — the queue ends, and the writer closes the socket with
/// 1013 (try again later), so that the client reconnects and resumes.
final class FrameOutbox: Sendable {
    private struct Held {
        var frames: [ServerFrame] = []
        var missed = false
    }

    let id = UUID()
    let userID: String
    let frames: AsyncStream<ServerFrame>
    private let continuation: AsyncStream<ServerFrame>.Continuation
    private let held = Mutex<Held?>(nil)
    private let overrun = Atomic<Bool>(false)
    /// Frames queued and not yet written.
    private let pending = Atomic<Int>(0)
    private let capacity: Int
    private let logger: Logger

    /// How the turns this listener sends reach Parley (the metrics' `channel`).
    let channel: Channel

    init(userID: String, capacity: Int, channel: Channel = .websocket, logger: Logger) {
        self.userID = userID
        self.channel = channel
        self.capacity = capacity
        (frames, continuation) = AsyncStream.makeStream(of: ServerFrame.self, bufferingPolicy: .bufferingOldest(capacity))
        self.logger = logger
    }

    func send(_ frame: ServerFrame) {
        let write = held.withLock { held -> Bool in
            guard held != nil else { return true }
            if frame.isDroppable { return false }
            // Half the queue: the history, the held frames and a `missed_replies` fit after.
            if held!.frames.count < capacity / 2 { held!.frames.append(frame) } else { held!.missed = true }
            return false
        }
        if write { enqueue(frame) }
    }

    /// Live frames wait from now until `release`.
    func hold() {
        held.withLock { $0 = $0 ?? Held() }
    }

    /// The socket stopped reading and a reply found its queue full: it must be closed.
    var isOverrun: Bool { overrun.load(ordering: .acquiring) }

    /// Sends `first`, then the frames that waited — except replies of `session` that
    /// `first` already contains (message id up to `coveredUpTo`).
    func release(first: ServerFrame?, session: UUID? = nil, coveredUpTo lastID: Int64? = nil) {
        let waiting = held.withLock { held -> Held in
            defer { held = nil }
            return held ?? Held()
        }
        if let first { enqueue(first) }
        for frame in waiting.frames {
            if case .reply(let done) = frame, done.sessionID == session, let lastID, done.message.id <= lastID { continue }
            enqueue(frame)
        }
        if waiting.missed {
            enqueue(
                .error(
                    code: .missedReplies,
                    message:
                        "more replies arrived while the history was read than this socket could hold; send resume again from the last message id you have"
                )
            )
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
            logger.warning("socket is not reading and its queue is full; closing it", metadata: ["socket_id": "\(id)"])
            overrun.store(true, ordering: .releasing)
            continuation.finish()
        }
    }
}
