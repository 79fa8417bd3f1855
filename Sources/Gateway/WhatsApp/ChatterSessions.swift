import Foundation
import Logging
import Shared

/// One conversation per person for channels without sessions of their own (a WhatsApp
/// number, a user of the older bot's `POST /chat`): their newest session while it is
/// active and was used within `idle`, else a new free chat.
struct ChatterSessions: Sendable {
    let directory: any SessionDirectory
    let registry: SessionRegistry
    let idle: Duration
    let logger: Logger

    /// The user id of a WhatsApp number: a namespace of its own, like `account:`, that
    /// no token or API key may claim (`UserID.channelPrefixes`).
    static func userID(whatsApp number: String) -> String { "whatsapp:\(number)" }
    /// The user id of the older bot's `POST /chat` user.
    static func userID(bot user: String) -> String { "bot:\(user)" }

    func session(of userID: String, now: Date = Date()) async throws(ClientError) -> UUID {
        let newest: SessionSummary?
        do {
            newest = try await directory.sessions(ofUser: userID, before: nil, limit: 1).first
        } catch {
            logger.warning("cannot read a chatter's sessions", metadata: ["user_id": "\(userID)", "error": "\(error)"])
            throw ClientError(code: .unavailable, message: "the database is unavailable; try again shortly")
        }
        if let newest, newest.status == .active, now.timeIntervalSince(newest.lastActivityAt) < idle.timeInterval {
            return newest.id
        }
        return try await registry.start(userID: userID, topicID: nil, courseID: nil).0.id
    }

    /// The user's messages in the session so far.
    func turns(in sessionID: UUID) async throws(ClientError) -> Int {
        do {
            return try await directory.userMessageCount(session: sessionID)
        } catch {
            throw ClientError(code: .unavailable, message: "the database is unavailable; try again shortly")
        }
    }
}
