import Foundation
import Shared
import Synchronization

/// `WhatsAppInbox` in memory, for unit tests; the SQL is tested against PostgreSQL in
/// the integration tests. Turns stand as `store` and `ledger` say.
public final class InMemoryWhatsAppInbox: WhatsAppInbox {
    public struct Row: Sendable, Equatable {
        public var message: WhatsAppMessage
        public var seq: Int
        public var dueAt: Date
        public var claimed: Bool
        public var finished: Bool { message.state.isFinished }
    }

    private let rows = Mutex<[String: Row]>([:])
    private let nextSeq = Mutex(1)
    private let store: InMemoryConversationStore?
    private let ledger: InMemoryTurnLedger?

    public init(store: InMemoryConversationStore? = nil, ledger: InMemoryTurnLedger? = nil) {
        self.store = store
        self.ledger = ledger
    }

    /// The stored messages, oldest first.
    public var all: [WhatsAppMessage] { rows.withLock { $0.values.sorted { $0.seq < $1.seq }.map(\.message) } }

    public func store(_ messages: [WhatsAppInbound]) async throws(StoreError) -> Set<String> {
        rows.withLock { rows in
            var stored = Set<String>()
            for inbound in messages where rows[inbound.messageID] == nil {
                let seq = nextSeq.withLock { next in
                    defer { next += 1 }
                    return next
                }
                rows[inbound.messageID] = Row(message: WhatsAppMessage(inbound: inbound, attempts: 0), seq: seq, dueAt: .distantPast, claimed: false)
                stored.insert(inbound.messageID)
            }
            return stored
        }
    }

    public func claim(limit: Int, lease: Duration) async throws(StoreError) -> [WhatsAppMessage] {
        let now = Date()
        return rows.withLock { rows in
            let open = rows.values.filter { !$0.finished }
            let oldest = Dictionary(grouping: open, by: \.message.inbound.sender).compactMapValues { $0.min { $0.seq < $1.seq } }
            let due = oldest.values.filter { $0.dueAt <= now }.sorted { $0.seq < $1.seq }.prefix(limit)
            return due.map { row in
                var row = row
                row.message.attempts += 1
                row.message.claim = UUID()
                row.dueAt = now.addingTimeInterval(lease.timeInterval)
                row.claimed = true
                rows[row.message.inbound.messageID] = row
                return row.message
            }
        }
    }

    public func renew(_ message: WhatsAppMessage, lease: Duration) async throws(StoreError) -> Bool {
        rows.withLock { rows in
            guard var row = rows[message.inbound.messageID], row.claimed, row.message.claim == message.claim, !row.finished else { return false }
            row.dueAt = Date().addingTimeInterval(lease.timeInterval)
            rows[message.inbound.messageID] = row
            return true
        }
    }

    public func save(_ message: WhatsAppMessage) async throws(StoreError) -> Bool {
        rows.withLock { rows in
            guard var row = rows[message.inbound.messageID], row.claimed, row.message.claim == message.claim, !row.finished else { return false }
            row.message = message
            rows[message.inbound.messageID] = row
            return true
        }
    }

    public func release(_ message: WhatsAppMessage, error: String?, retryIn: Duration) async throws(StoreError) {
        rows.withLock { rows in
            guard var row = rows[message.inbound.messageID], row.claimed, row.message.claim == message.claim, !row.finished else { return }
            row.claimed = false
            row.dueAt = Date().addingTimeInterval(retryIn.timeInterval)
            row.message.lastError = error ?? row.message.lastError
            rows[message.inbound.messageID] = row
        }
    }

    public func standing(ofTurn turnID: UUID) async throws(StoreError) -> TurnStanding {
        let reply = try await store?.reply(forTurn: turnID)?.content
        let entry = ledger?.entry(turnID)
        let overdue =
            entry.map { $0.deadline < Date().addingTimeInterval(-30) && !($0.holder != nil && ($0.heldUntil ?? .distantPast) >= Date()) } ?? false
        return TurnStanding(reply: reply, state: entry?.state, overdue: overdue)
    }

    public func backlog() async throws(StoreError) -> Int {
        rows.withLock { $0.values.filter { !$0.finished }.count }
    }
}
