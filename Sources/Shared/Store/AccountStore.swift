import Foundation

/// What became of a request to create an account.
public enum AccountCreation: Sendable, Equatable {
    case created
    /// The user id has an account already, or owns sessions of another sign-in (an
    /// API key's or an identity provider's user), which an account must not take over.
    case taken
}

/// The chat page's accounts (`ACCOUNTS=on`): user ids with password hashes.
/// `PostgresAccountStore` is the real one.
public protocol AccountStore: Sendable {
    func create(userID: String, passwordHash: String) async throws(StoreError) -> AccountCreation
    /// The stored hash, nil when the user id has no account.
    func passwordHash(userID: String) async throws(StoreError) -> String?
    /// Notes a successful login (shown to operators, not used for decisions).
    func recordLogin(userID: String) async throws(StoreError)
}
