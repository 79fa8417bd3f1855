import Foundation
import Shared
import Synchronization

/// `ConversationStore` in memory, for unit tests of the code around the store.
/// The SQL is tested against PostgreSQL in the integration tests.
public final class InMemoryConversationStore: ConversationStore {
    struct State {
        var sessions: [UUID: SessionRecord] = [:]
        var contexts: [UUID: SessionContext] = [:]
        var messages: [(session: UUID, turn: UUID, message: ChatMessage)] = []
        var nextID: Int64 = 1
    }

    private let state = Mutex(State())
    private let failure = Mutex<StoreError?>(nil)
    private let ledger: InMemoryTurnLedger?

    /// With `ledger`, `record` stores a fenced turn only while its attempt holds it.
    public init(ledger: InMemoryTurnLedger? = nil) {
        self.ledger = ledger
    }

    /// Makes every call fail with `error` (nil to recover).
    public func failEveryCall(with error: StoreError?) {
        failure.withLock { $0 = error }
    }

    /// A copy of everything stored.
    func snapshot() throws(StoreError) -> State {
        try check()
        return state.withLock { $0 }
    }

    private func check() throws(StoreError) {
        if let error = failure.withLock({ $0 }) { throw error }
    }

    public func createSession(_ session: SessionRecord, context: SessionContext) async throws(StoreError) {
        try check()
        state.withLock {
            $0.sessions[session.id] = session
            $0.contexts[session.id] = context
        }
    }

    public func context(ofSession id: UUID) async throws(StoreError) -> SessionContext? {
        try check()
        return state.withLock { $0.contexts[id] }
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
        let fenced = turn.attempt.map { attempt in ledger?.markAnswered(turn.turnID, by: attempt) ?? true } ?? true
        return try state.withLock { state throws(StoreError) in
            if let existing = state.messages.first(where: { $0.turn == turn.turnID && $0.message.role == .assistant }) {
                return StoredReply(message: existing.message, isNew: false)
            }
            guard fenced else { throw .superseded(turnID: turn.turnID) }
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
                state.sessions[turn.sessionID]?.completedAt = Date()
            }
            return StoredReply(message: reply, isNew: true)
        }
    }

    public func chatLogs(userID: String?, before: Int64?, limit: Int) async throws(StoreError) -> [ChatLogEntry] {
        try check()
        return state.withLock { state in
            let prompts = Dictionary(
                state.messages.filter { $0.message.role == .user }.map { ($0.turn, $0.message.content) },
                uniquingKeysWith: { first, _ in first }
            )
            return state.messages.reversed().compactMap { entry -> ChatLogEntry? in
                guard entry.message.role == .assistant, let prompt = prompts[entry.turn], let session = state.sessions[entry.session],
                    userID == nil || session.userID == userID, before.map({ entry.message.id < $0 }) ?? true
                else { return nil }
                return ChatLogEntry(
                    messageID: entry.message.id,
                    turnID: entry.turn,
                    sessionID: entry.session,
                    userID: session.userID,
                    prompt: prompt,
                    response: entry.message.content,
                    model: nil,
                    timestamp: entry.message.timestamp
                )
            }.prefix(limit).map { $0 }
        }
    }

    public func ping() async throws(StoreError) {
        try check()
    }
}
