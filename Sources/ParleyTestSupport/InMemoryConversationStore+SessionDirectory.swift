import Foundation
import Shared

/// The in-memory store lists its sessions as `PostgresSessionDirectory` does.
extension InMemoryConversationStore: SessionDirectory {
    public func sessions(ofUser userID: String, before: SessionCursor?, limit: Int) async throws(StoreError) -> [SessionSummary] {
        let below = before ?? .top
        let state = try snapshot()
        return state.sessions.values
            .filter { $0.userID == userID }
            .map { session in
                SessionSummary(
                    id: session.id,
                    status: session.status,
                    topicID: session.topicID,
                    courseID: session.courseID,
                    topicTitle: state.contexts[session.id]?.topicTitle,
                    firstMessage: state.messages.first { $0.session == session.id && $0.message.role == .user }?.message.content,
                    startedAtMicroseconds: Int64((session.startedAt.timeIntervalSince1970 * 1_000_000).rounded()),
                    lastActivityAt: session.startedAt
                )
            }
            .filter { ($0.startedAtMicroseconds, $0.id.lowercased) < (below.startedAtMicroseconds, below.id.lowercased) }
            .sorted { ($0.startedAtMicroseconds, $0.id.lowercased) > ($1.startedAtMicroseconds, $1.id.lowercased) }
            .prefix(limit)
            .map { $0 }
    }

    public func userMessageCount(session: UUID) async throws(StoreError) -> Int {
        try snapshot().messages.filter { $0.session == session && $0.message.role == .user }.count
    }
}
