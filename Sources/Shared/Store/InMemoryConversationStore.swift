import Foundation
import Synchronization

/// `ConversationStore` in memory, for unit tests of the code around the store.
/// The SQL is tested against PostgreSQL in the integration tests.
public final class InMemoryConversationStore: ConversationStore {
    private struct State {
        var sessions: [UUID: SessionRecord] = [:]
        var messages: [(session: UUID, turn: UUID, message: ChatMessage)] = []
        var nextID: Int64 = 1
    }

    private let state = Mutex(State())
    private let failure = Mutex<StoreError?>(nil)

    public init() {}

    /// Makes every call fail with `error` (nil to recover).
    public func failEveryCall(with error: StoreError?) {
        failure.withLock { $0 = error }
    }

    private func check() throws(StoreError) {
        if let error = failure.withLock({ $0 }) { throw error }
    }

    public func createSession(_ session: SessionRecord) async throws(StoreError) {
        try check()
        state.withLock { $0.sessions[session.id] = session }
    }

    public func session(id: UUID) async throws(StoreError) -> SessionRecord? {
        try check()
        return state.withLock { $0.sessions[id] }
    }

    public func reply(forTurn turnID: UUID) async throws(StoreError) -> ChatMessage? {
        try check()
        return state.withLock { state in
            state.messages.first { $0.turn == turnID && $0.message.role == .assistant }?.message
        }
    }

    public func recentMessages(session: UUID, limit: Int) async throws(StoreError) -> [ChatMessage] {
        try check()
        return state.withLock { state in
            Array(state.messages.filter { $0.session == session }.map(\.message).suffix(limit))
        }
    }

    public func messages(session: UUID, afterID: Int64, limit: Int) async throws(StoreError) -> [ChatMessage] {
        try check()
        return state.withLock { state in
            Array(state.messages.filter { $0.session == session && $0.message.id > afterID }.map(\.message).prefix(limit))
        }
    }

    public func record(_ turn: CompletedTurn) async throws(StoreError) -> StoredReply {
        try check()
        return state.withLock { state in
            if let existing = state.messages.first(where: { $0.turn == turn.turnID && $0.message.role == .assistant }) {
                return StoredReply(message: existing.message, isNew: false)
            }
            if let userContent = turn.userContent {
                let user = ChatMessage(id: state.nextID, role: .user, content: userContent, timestamp: Date())
                state.nextID += 1
                state.messages.append((turn.sessionID, turn.turnID, user))
            }
            let reply = ChatMessage(id: state.nextID, role: .assistant, content: turn.replyContent, timestamp: Date())
            state.nextID += 1
            state.messages.append((turn.sessionID, turn.turnID, reply))
            if turn.completesSession, state.sessions[turn.sessionID]?.status == .active {
                state.sessions[turn.sessionID]?.status = .completed
            }
            return StoredReply(message: reply, isNew: true)
        }
    }

    public func ping() async throws(StoreError) {
        try check()
    }
}
