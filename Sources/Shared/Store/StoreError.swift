import Foundation
import ParleySupport
import PostgresNIO

/// What can go wrong at the conversation-store boundary.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The database cannot be reached (down, refusing connections, timed out).
    case unavailable(String)
    /// The database answered with an error.
    case queryFailed(String)
    /// Another attempt took the turn over (`TurnLedger`): this attempt's reply is not
    /// stored, and it must publish nothing.
    case superseded(turnID: UUID)

    public var description: String {
        switch self {
        case .unavailable(let why): "database unavailable: \(why)"
        case .queryFailed(let why): "database query failed: \(why)"
        case .superseded(let turnID): "turn \(turnID.lowercased) was taken over by another attempt"
        }
    }

    /// Server errors that go away by themselves: connection problems (class 08), too
    /// many connections or out of resources (53), shutting down or starting up (57P01
    /// to 57P03), statement timeout or lock wait (57014, 55P03), serialization
    /// failure and deadlock (40001, 40P01).
    static func isTransient(sqlState: String) -> Bool {
        sqlState.hasPrefix("08") || sqlState.hasPrefix("53")
            || ["57P01", "57P02", "57P03", "57014", "55P03", "40001", "40P01"].contains(sqlState)
    }

    /// Classifies any error thrown by PostgresNIO (or by `withTimeout`). A statement
    /// the server refuses is judged by its SQLSTATE, also inside a transaction (where
    /// PostgresNIO wraps it): only the transient classes are an outage.
    public static func wrapping(_ error: any Error) -> StoreError {
        if let storeError = error as? StoreError { return storeError }
        if error is TimeoutError { return .unavailable("no answer within the time limit") }
        if let transaction = error as? PostgresTransactionError {
            // The commit's own failure leaves the outcome unknown: an outage, retried
            // (a retried turn finds its reply if the commit did happen).
            if let cause = transaction.closureError ?? transaction.beginError ?? transaction.commitError {
                return wrapping(cause)
            }
            return .unavailable("the transaction failed")
        }
        if let psql = error as? PSQLError {
            guard let serverInfo = psql.serverInfo, let message = serverInfo[.message] else {
                return .unavailable("\(psql.code)")
            }
            let sqlState = serverInfo[.sqlState] ?? ""
            return isTransient(sqlState: sqlState) ? .unavailable("\(sqlState) \(message)") : .queryFailed("\(sqlState) \(message)")
        }
        return .unavailable(String(describing: error))
    }
}
