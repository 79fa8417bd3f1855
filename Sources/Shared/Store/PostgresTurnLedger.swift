import Foundation
import Logging
import PostgresNIO

/// `TurnLedger` on PostgreSQL (table `turns`, migration 5). Every call is one
/// statement; the row lock of the `UPDATE` decides between attempts racing for a turn.
public struct PostgresTurnLedger: TurnLedger {
    private let client: PostgresClient
    private let logger: Logger
    private let timeout: Duration

    public init(client: PostgresClient, logger: Logger, timeout: Duration = .seconds(5)) {
        self.client = client
        self.logger = logger
        self.timeout = timeout
    }

    public func register(_ turn: TurnEnvelope) async throws(StoreError) {
        let (client, logger) = (self.client, self.logger)
        // The next place in the session's order. Two gateways entering a turn of one
        // session at the same moment collide on (session_id, seq): the loser tries again.
        for _ in 1...8 {
            do {
                try await storeCall(timeout: timeout) {
                    try await client.query(
                        """
                        INSERT INTO turns (turn_id, session_id, seq, deadline)
                        SELECT \(turn.turnID), \(turn.sessionID), coalesce(max(seq), 0) + 1, \(turn.ledgerDeadline)
                        FROM turns WHERE session_id = \(turn.sessionID)
                        ON CONFLICT (turn_id) DO NOTHING
                        """,
                        logger: logger
                    )
                }
                return
            } catch .queryFailed(let why) where why.hasPrefix(Self.uniqueViolation) {
                continue
            }
        }
        throw .unavailable("could not find a place for turn \(turn.turnID.lowercased) in its session's order")
    }

    public func withdraw(turnID: UUID) async throws(StoreError) {
        let (client, logger) = (self.client, self.logger)
        try await storeCall(timeout: timeout) {
            try await client.query(
                """
                UPDATE turns SET state = 'withdrawn', settled_at = now()
                WHERE turn_id = \(turnID) AND state = 'queued' AND holder IS NULL
                """,
                logger: logger
            )
        }
    }

    public func claim(_ turn: TurnEnvelope, attempt: UUID, takeover: Bool, holdFor: Duration) async throws(StoreError) -> TurnClaim {
        for _ in 1...3 {
            if let number = try await take(turn.turnID, attempt: attempt, takeover: takeover, holdFor: holdFor) {
                return .granted(attemptNumber: number)
            }
            switch try await standing(of: turn.turnID) {
            case nil:
                // Entered by no gateway (one older than the ledger): enter it now.
                try await register(turn)
            case .some(let standing) where standing.state != .queued:
                return .settled(standing.state)
            case .some(let standing) where standing.blockedByEarlierTurn:
                return .waitForEarlierTurn
            case .some(let standing) where standing.heldByOther:
                return .heldByAnotherAttempt
            case .some:
                continue  // the hold ended between the two statements
            }
        }
        return .heldByAnotherAttempt
    }

    public func renew(turnID: UUID, attempt: UUID, holdFor: Duration) async throws(StoreError) -> Bool {
        let (client, logger) = (self.client, self.logger)
        let seconds = holdFor.timeInterval
        return try await storeCall(timeout: timeout) {
            let rows = try await client.query(
                """
                UPDATE turns SET held_until = now() + make_interval(secs => \(seconds))
                WHERE turn_id = \(turnID) AND holder = \(attempt) AND state = 'queued'
                RETURNING 1
                """,
                logger: logger
            )
            for try await _ in rows { return true }
            return false
        }
    }

    public func settle(turnID: UUID, attempt: UUID, as state: TurnLedgerState) async throws(StoreError) -> Bool {
        let (client, logger) = (self.client, self.logger)
        return try await storeCall(timeout: timeout) {
            // True when this attempt ended the turn, or when the ledger does not know it
            // (then nobody else holds it either).
            let rows = try await client.query(
                """
                WITH ended AS (
                    UPDATE turns SET state = \(state.rawValue), holder = NULL, held_until = NULL, settled_at = now()
                    WHERE turn_id = \(turnID) AND state = 'queued' AND (holder = \(attempt) OR holder IS NULL OR held_until < now())
                    RETURNING 1
                )
                SELECT EXISTS (SELECT 1 FROM ended) OR NOT EXISTS (SELECT 1 FROM turns WHERE turn_id = \(turnID))
                """,
                logger: logger
            )
            for try await ended in rows.decode(Bool.self) { return ended }
            return false
        }
    }

    public func release(turnID: UUID, attempt: UUID) async throws(StoreError) {
        let (client, logger) = (self.client, self.logger)
        try await storeCall(timeout: timeout) {
            try await client.query(
                "UPDATE turns SET holder = NULL, held_until = NULL WHERE turn_id = \(turnID) AND holder = \(attempt)", logger: logger
            )
        }
    }

    // MARK: Steps of a claim

    static let uniqueViolation = "23505"

    /// Takes the turn for `attempt` when it may be generated now; returns the attempt
    /// number, or nil when it may not.
    private func take(_ turnID: UUID, attempt: UUID, takeover: Bool, holdFor: Duration) async throws(StoreError) -> Int? {
        let (client, logger) = (self.client, self.logger)
        let seconds = holdFor.timeInterval
        return try await storeCall(timeout: timeout) {
            let rows = try await client.query(
                """
                UPDATE turns t SET holder = \(attempt), held_until = now() + make_interval(secs => \(seconds)), attempts = t.attempts + 1
                WHERE t.turn_id = \(turnID) AND t.state = 'queued'
                  AND (t.holder IS NULL OR t.holder = \(attempt) OR t.held_until < now() OR \(takeover))
                  AND NOT EXISTS (
                      SELECT 1 FROM turns p
                      WHERE p.session_id = t.session_id AND p.seq < t.seq AND p.state = 'queued' AND p.deadline > now()
                  )
                RETURNING t.attempts
                """,
                logger: logger
            )
            for try await number in rows.decode(Int.self) { return number }
            return nil
        }
    }

    private struct Standing {
        var state: TurnLedgerState
        var heldByOther: Bool
        var blockedByEarlierTurn: Bool
    }

    private func standing(of turnID: UUID) async throws(StoreError) -> Standing? {
        let (client, logger) = (self.client, self.logger)
        return try await storeCall(timeout: timeout) {
            let rows = try await client.query(
                """
                SELECT t.state, t.holder IS NOT NULL AND t.held_until >= now(),
                       EXISTS (
                           SELECT 1 FROM turns p
                           WHERE p.session_id = t.session_id AND p.seq < t.seq AND p.state = 'queued' AND p.deadline > now()
                       )
                FROM turns t WHERE t.turn_id = \(turnID)
                """,
                logger: logger
            )
            for try await (state, held, blocked) in rows.decode((String, Bool, Bool).self) {
                return Standing(state: TurnLedgerState(rawValue: state) ?? .queued, heldByOther: held, blockedByEarlierTurn: blocked)
            }
            return nil
        }
    }
}
