import Foundation
import Logging
import ParleySupport
import PostgresNIO

/// `TurnLedger` on PostgreSQL (table `turns`, migration 5). Every call is one
/// statement; the row lock of the `UPDATE` decides between attempts racing for a turn.
public struct PostgresTurnLedger: TurnLedger {
    private let client: PostgresClient
    private let logger: Logger
    private let timeout: Duration
    private let statements: StatementRunner

    /// `preparedStatements`: see `StatementRunner` (`DATABASE_PREPARED_STATEMENTS`).
    public init(client: PostgresClient, logger: Logger, timeout: Duration = .seconds(5), preparedStatements: Bool = true) {
        self.client = client
        self.logger = logger
        self.timeout = timeout
        self.statements = StatementRunner(client: client, prepared: preparedStatements, logger: logger)
    }

    public func register(_ turn: TurnEnvelope) async throws(StoreError) {
        try await enter(turn, late: false)
    }

    public func withdraw(_ turn: TurnEnvelope) async throws(StoreError) {
        try await enter(turn, late: false, withdrawn: true)
    }

    public func claim(_ turn: TurnEnvelope, attempt: LedgerAttempt, holdFor: Duration) async throws(StoreError) -> TurnClaim {
        for _ in 1...3 {
            if let number = try await take(turn, attempt: attempt, holdFor: holdFor) {
                return .granted(attemptNumber: number)
            }
            switch try await standing(of: turn.turnID) {
            case nil:
                // Entered by no gateway (it could not reach the database, or predates
                // the ledger): enter it now, ordered by when its gateway sent it.
                try await enter(turn, late: true)
            case .some(let standing) where standing.state != .queued:
                return .settled(standing.state, standing.failure)
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

    public func renew(turnID: UUID, attempt: LedgerAttempt, holdFor: Duration) async throws(StoreError) -> Bool {
        let (statements, seconds) = (self.statements, holdFor.timeInterval)
        return try await storeCall(timeout: timeout) {
            try await !statements.rows(RenewStatement(turnID: turnID, attempt: attempt, holdSeconds: seconds)).isEmpty
        }
    }

    public func settle(
        turnID: UUID,
        attempt: LedgerAttempt,
        as state: TurnLedgerState,
        failure: SettledFailure?
    ) async throws(StoreError) -> Bool {
        let statements = self.statements
        return try await storeCall(timeout: timeout) {
            try await statements.rows(SettleStatement(turnID: turnID, attempt: attempt, state: state, failure: failure)).first ?? false
        }
    }

    public func release(turnID: UUID, attempt: LedgerAttempt) async throws(StoreError) {
        let (client, logger) = (self.client, self.logger)
        try await storeCall(timeout: timeout) {
            try await client.query(
                "UPDATE turns SET holder = NULL, holder_copy = NULL, held_until = NULL WHERE turn_id = \(turnID) AND holder = \(attempt.id)",
                logger: logger
            )
        }
    }

    // MARK: Steps

    static let uniqueViolation = "23505"

    /// An earlier turn `p` of the same session as `t` that is still open: queued, not
    /// answered, and within its deadline or held by a live attempt. Turns that a
    /// gateway entered are ordered by `seq`; one a worker entered late, by `sent_at`.
    /// (A turn answered by a worker older than the ledger has a stored answer.)
    static let openEarlierTurn = """
        SELECT 1 FROM turns p
        WHERE p.session_id = t.session_id AND p.turn_id <> t.turn_id AND p.state = 'queued'
          AND CASE WHEN p.late OR t.late THEN p.sent_at < t.sent_at ELSE p.seq < t.seq END
          AND (p.deadline > now() OR (p.holder IS NOT NULL AND p.held_until >= now()))
          AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.turn_id = p.turn_id AND m.role = 'assistant')
        """

    /// Enters a turn at the next place in its session's order. Two gateways entering a
    /// turn of one session at the same moment collide on (session_id, seq): the loser
    /// tries again. Entering a turn twice (a re-publish) keeps its place.
    /// Enters the turn at the end of its session's order — or, `withdrawn`, marks it
    /// withdrawn whether or not it was entered: the primary key then makes a register
    /// that commits later a no-op, and a register still in flight is waited for and
    /// withdrawn after it.
    private func enter(_ turn: TurnEnvelope, late: Bool, withdrawn: Bool = false) async throws(StoreError) {
        let statements = self.statements
        for _ in 1...8 {
            do {
                try await storeCall(timeout: timeout) {
                    if withdrawn {
                        _ = try await statements.rows(WithdrawStatement(turn: turn))
                    } else {
                        _ = try await statements.rows(EnterStatement(turn: turn, late: late))
                    }
                }
                return
            } catch .queryFailed(let why) where why.hasPrefix(Self.uniqueViolation) {
                continue
            }
        }
        throw .unavailable("could not find a place for turn \(turn.turnID.lowercased) in its session's order")
    }

    /// Takes the turn for `attempt` when it may be generated now; returns the attempt
    /// number, or nil when it may not.
    private func take(_ turn: TurnEnvelope, attempt: LedgerAttempt, holdFor: Duration) async throws(StoreError) -> Int? {
        let (statements, seconds) = (self.statements, holdFor.timeInterval)
        let statement = TakeStatement(turnID: turn.turnID, sessionID: turn.sessionID, attempt: attempt, holdSeconds: seconds)
        return try await storeCall(timeout: timeout) {
            try await statements.rows(statement).first
        }
    }

    private struct Standing {
        var state: TurnLedgerState
        var failure: SettledFailure?
        var heldByOther: Bool
        var blockedByEarlierTurn: Bool
    }

    private func standing(of turnID: UUID) async throws(StoreError) -> Standing? {
        let (client, logger) = (self.client, self.logger)
        return try await storeCall(timeout: timeout) {
            let query: PostgresQuery = """
                SELECT t.state, t.error_code, t.error_message, t.holder IS NOT NULL AND t.held_until >= now(),
                       EXISTS (\(unescaped: Self.openEarlierTurn))
                FROM turns t WHERE t.turn_id = \(turnID)
                """
            for try await (state, code, message, held, blocked) in try await client.query(query, logger: logger).decode(
                (String, String?, String?, Bool, Bool).self
            ) {
                let failure = code.map { SettledFailure(code: ErrorCode(rawValue: $0) ?? .unavailable, message: message ?? "") }
                return Standing(
                    state: TurnLedgerState(rawValue: state) ?? .queued,
                    failure: failure,
                    heldByOther: held,
                    blockedByEarlierTurn: blocked
                )
            }
            return nil
        }
    }
}
