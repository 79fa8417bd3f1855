import Foundation
import Logging

/// The outbound side of one WebSocket: a bounded queue of frames that the
/// socket's writer task drains, so a slow client never blocks anybody else.
final class SocketOutbox: Sendable {
    let id = UUID()
    let userID: String
    let frames: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation
    private let logger: Logger

    init(userID: String, capacity: Int, logger: Logger) {
        self.userID = userID
        (frames, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(capacity))
        self.logger = logger
    }

    func send(_ frame: ServerFrame) {
        if case .dropped = continuation.yield(frame.text) {
            logger.warning("socket is not reading; dropped a frame", metadata: ["socket_id": "\(id)"])
        }
    }

    /// Ends the writer task once the queued frames are written.
    func finish() {
        continuation.finish()
    }
}
