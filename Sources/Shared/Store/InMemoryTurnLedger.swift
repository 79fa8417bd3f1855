import Foundation
import Synchronization

/// `TurnLedger` in memory, for unit tests; the SQL is tested against PostgreSQL in
/// the integration tests. Give it to `InMemoryConversationStore` to fence `record`.
public final class InMemoryTurnLedger: TurnLedger {
    public struct Entry: Sendable, Equatable {
        public var sessionID: UUID
        public var seq: Int
        public var state: TurnLedgerState = .queued
        public var deadline: Date
        public var holder: UUID?
        public var heldUntil: Date?
        public var attempts = 0
    }

    private let entries = Mutex<[UUID: Entry]>([:])

    public init() {}

    public func entry(_ turnID: UUID) -> Entry? { entries.withLock { $0[turnID] } }

    public func register(_ turn: TurnEnvelope) async throws(StoreError) {
        entries.withLock { entries in
            guard entries[turn.turnID] == nil else { return }
            let seq = (entries.values.filter { $0.sessionID == turn.sessionID }.map(\.seq).max() ?? 0) + 1
            entries[turn.turnID] = Entry(sessionID: turn.sessionID, seq: seq, deadline: turn.ledgerDeadline)
        }
    }

    public func withdraw(turnID: UUID) async throws(StoreError) {
        entries.withLock { entries in
            guard entries[turnID]?.state == .queued, entries[turnID]?.holder == nil else { return }
            entries[turnID]?.state = .withdrawn
        }
    }

    public func claim(_ turn: TurnEnvelope, attempt: UUID, takeover: Bool, holdFor: Duration) async throws(StoreError) -> TurnClaim {
        try await register(turn)
        let now = Date()
        return entries.withLock { entries in
            guard let entry = entries[turn.turnID] else { return .heldByAnotherAttempt }
            guard entry.state == .queued else { return .settled(entry.state) }
            let blocked = entries.values.contains {
                $0.sessionID == entry.sessionID && $0.seq < entry.seq && $0.state == .queued && $0.deadline > now
            }
            if blocked { return .waitForEarlierTurn }
            let heldByOther = entry.holder != nil && entry.holder != attempt && (entry.heldUntil ?? now) >= now
            if heldByOther, !takeover { return .heldByAnotherAttempt }
            entries[turn.turnID]?.holder = attempt
            entries[turn.turnID]?.heldUntil = now.addingTimeInterval(holdFor.timeInterval)
            entries[turn.turnID]?.attempts += 1
            return .granted(attemptNumber: entry.attempts + 1)
        }
    }

    public func renew(turnID: UUID, attempt: UUID, holdFor: Duration) async throws(StoreError) -> Bool {
        entries.withLock { entries in
            guard entries[turnID]?.holder == attempt, entries[turnID]?.state == .queued else { return false }
            entries[turnID]?.heldUntil = Date().addingTimeInterval(holdFor.timeInterval)
            return true
        }
    }

    public func settle(turnID: UUID, attempt: UUID, as state: TurnLedgerState) async throws(StoreError) -> Bool {
        entries.withLock { entries in
            guard let entry = entries[turnID] else { return true }
            let free = entry.holder == nil || entry.holder == attempt || (entry.heldUntil ?? .distantPast) < Date()
            guard entry.state == .queued, free else { return false }
            entries[turnID]?.state = state
            entries[turnID]?.holder = nil
            return true
        }
    }

    public func release(turnID: UUID, attempt: UUID) async throws(StoreError) {
        entries.withLock { entries in
            guard entries[turnID]?.holder == attempt else { return }
            entries[turnID]?.holder = nil
            entries[turnID]?.heldUntil = nil
        }
    }

    /// The store's side of `record`: true when `attempt` held the turn, now answered.
    func markAnswered(_ turnID: UUID, by attempt: UUID) -> Bool {
        entries.withLock { entries in
            guard entries[turnID]?.holder == attempt, entries[turnID]?.state == .queued else { return false }
            entries[turnID]?.state = .answered
            entries[turnID]?.holder = nil
            return true
        }
    }
}
