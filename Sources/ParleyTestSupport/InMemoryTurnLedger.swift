import Foundation
import Shared
import Synchronization

/// `TurnLedger` in memory, for unit tests; the SQL is tested against PostgreSQL in
/// the integration tests. Give it to `InMemoryConversationStore` to fence `record`.
public final class InMemoryTurnLedger: TurnLedger {
    public struct Entry: Sendable, Equatable {
        public var sessionID: UUID
        public var seq: Int
        public var state: TurnLedgerState = .queued
        public var deadline: Date
        public var sentAt: Date
        public var late: Bool
        public var holder: UUID?
        public var holderCopy: UUID?
        public var heldUntil: Date?
        public var attempts = 0
        public var failure: SettledFailure?

        func isHeld(at now: Date) -> Bool { holder != nil && (heldUntil ?? .distantPast) >= now }

        /// Whether `self` is an open turn that `later` must wait for.
        func blocks(_ later: Entry, at now: Date) -> Bool {
            guard sessionID == later.sessionID, state == .queued, deadline > now || isHeld(at: now) else { return false }
            return late || later.late ? sentAt < later.sentAt : seq < later.seq
        }

        func mayBeTaken(by attempt: LedgerAttempt, at now: Date) -> Bool {
            holder == nil || holder == attempt.id || (heldUntil ?? .distantPast) < now || (attempt.takeover && holderCopy == attempt.copy)
        }
    }

    private let entries = Mutex<[UUID: Entry]>([:])

    public init() {}

    public func entry(_ turnID: UUID) -> Entry? { entries.withLock { $0[turnID] } }

    public func register(_ turn: TurnEnvelope) async throws(StoreError) {
        enter(turn, late: false)
    }

    public func withdraw(_ turn: TurnEnvelope) async throws(StoreError) {
        enter(turn, late: false)
        entries.withLock { entries in
            guard entries[turn.turnID]?.state == .queued, entries[turn.turnID]?.holder == nil else { return }
            entries[turn.turnID]?.state = .withdrawn
        }
    }

    public func claim(_ turn: TurnEnvelope, attempt: LedgerAttempt, holdFor: Duration) async throws(StoreError) -> TurnClaim {
        enter(turn, late: true)
        let now = Date()
        return entries.withLock { entries in
            guard let entry = entries[turn.turnID] else { return .heldByAnotherAttempt }
            guard entry.state == .queued else { return .settled(entry.state, entry.failure) }
            if entries.contains(where: { $0.key != turn.turnID && $0.value.blocks(entry, at: now) }) { return .waitForEarlierTurn }
            guard entry.mayBeTaken(by: attempt, at: now) else { return .heldByAnotherAttempt }
            entries[turn.turnID]?.holder = attempt.id
            entries[turn.turnID]?.holderCopy = attempt.copy
            entries[turn.turnID]?.heldUntil = now.addingTimeInterval(holdFor.timeInterval)
            entries[turn.turnID]?.attempts += 1
            return .granted(attemptNumber: entry.attempts + 1)
        }
    }

    public func renew(turnID: UUID, attempt: LedgerAttempt, holdFor: Duration) async throws(StoreError) -> Bool {
        entries.withLock { entries in
            guard entries[turnID]?.holder == attempt.id, entries[turnID]?.state == .queued else { return false }
            entries[turnID]?.heldUntil = Date().addingTimeInterval(holdFor.timeInterval)
            return true
        }
    }

    public func settle(
        turnID: UUID,
        attempt: LedgerAttempt,
        as state: TurnLedgerState,
        failure: SettledFailure?
    ) async throws(StoreError) -> Bool {
        entries.withLock { entries in
            guard let entry = entries[turnID] else { return true }
            guard entry.state == .queued, entry.mayBeTaken(by: attempt, at: Date()) else { return false }
            entries[turnID]?.state = state
            entries[turnID]?.failure = failure
            entries[turnID]?.holder = nil
            return true
        }
    }

    public func release(turnID: UUID, attempt: LedgerAttempt) async throws(StoreError) {
        entries.withLock { entries in
            guard entries[turnID]?.holder == attempt.id else { return }
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

    private func enter(_ turn: TurnEnvelope, late: Bool) {
        entries.withLock { entries in
            guard entries[turn.turnID] == nil else { return }
            let seq = (entries.values.filter { $0.sessionID == turn.sessionID }.map(\.seq).max() ?? 0) + 1
            entries[turn.turnID] = Entry(sessionID: turn.sessionID, seq: seq, deadline: turn.ledgerDeadline, sentAt: turn.sentAt, late: late)
        }
    }
}
