import Foundation
import Logging
import Shared

/// Creates sessions and checks access to them, for WebSocket and REST alike.
struct SessionRegistry: Sendable {
    let store: any ConversationStore
    let contexts: any SessionContextSource
    let logger: Logger

    /// Resolves the learner's context for the topic (unknown topic or course → an
    /// error, nothing stored), then stores session and context together.
    func start(userID: String, topicID: Int64?, courseID: Int64?) async throws(ClientError) -> (SessionRecord, SessionContext) {
        let context = try await contexts.context(userID: userID, topicID: topicID, courseID: courseID)
        let session = SessionRecord(id: UUID(), userID: userID, topicID: topicID, courseID: courseID)
        do {
            try await store.createSession(session, context: context)
        } catch {
            logger.error(
                "could not create a session",
                metadata: ["user_id": "\(userID)", "topic_id": "\(topicID.map(String.init) ?? "-")", "error": "\(error)"]
            )
            throw ClientError(code: .unavailable, message: "the database is unavailable; no session was started, try again shortly")
        }
        logger.info(
            "session started",
            metadata: [
                "session_id": "\(session.id.lowercased)", "user_id": "\(userID)", "topic_id": "\(topicID.map(String.init) ?? "-")",
                "context": "\(context.source.rawValue)",
            ]
        )
        return (session, context)
    }

    /// The session, when `userID` may use it (`admin` may read any session).
    /// `mustBeActive` refuses a completed session, as sending to it does.
    func session(_ sessionID: UUID, for userID: String, admin: Bool = false, mustBeActive: Bool) async throws(ClientError) -> SessionRecord {
        let session: SessionRecord?
        do {
            session = try await store.session(id: sessionID)
        } catch {
            logger.warning("cannot read a session", metadata: ["session_id": "\(sessionID.lowercased)", "error": "\(error)"])
            throw ClientError(code: .unavailable, message: "the database is unavailable; try again shortly")
        }
        guard let session else {
            throw ClientError(code: .sessionNotFound, message: "there is no session \(sessionID.lowercased)")
        }
        guard session.userID == userID || admin else {
            throw ClientError(code: .forbidden, message: "session \(sessionID.lowercased) belongs to another user")
        }
        guard !mustBeActive || session.status == .active else {
            throw ClientError(
                code: .sessionCompleted,
                message: "session \(sessionID.lowercased) is \(session.status.rawValue) and takes no more messages"
            )
        }
        return session
    }
}
