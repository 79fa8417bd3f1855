import PostgresNIO

/// What can go wrong at the conversation-store boundary.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// The database cannot be reached (down, refusing connections, timed out).
    case unavailable(String)
    /// The database answered with an error.
    case queryFailed(String)

    public var description: String {
        switch self {
        case .unavailable(let why): "database unavailable: \(why)"
        case .queryFailed(let why): "database query failed: \(why)"
        }
    }

    /// Classifies any error thrown by PostgresNIO (or by `withTimeout`).
    static func wrapping(_ error: any Error) -> StoreError {
        if let storeError = error as? StoreError { return storeError }
        if error is TimeoutError { return .unavailable("no answer within the time limit") }
        if let psql = error as? PSQLError {
            if let message = psql.serverInfo?[.message] {
                return .queryFailed(message)
            }
            return .unavailable("\(psql.code)")
        }
        return .unavailable(String(describing: error))
    }
}
