import Foundation
import Logging
import Shared

/// The chat page's accounts (`ACCOUNTS=on`): register a user name with a password and
/// log in, each answered with the gateway's own HS256 token. Every attempt costs a
/// scrypt, so attempts are rate-limited per client address, and logins also per
/// account name (a guesser with many addresses still gets few tries at one account).
struct Accounts: Sendable {
    let store: any AccountStore
    let hasher: PasswordHasher
    let issuer: AccountTokenIssuer
    let attemptsPerAddress: RateLimiter
    let loginsPerAccount: RateLimiter
    let logger: Logger

    /// `register` and `logIn` answer with this.
    typealias Issued = AccountTokenIssuer.Issued

    func register(name: String, password: String, from address: String) async throws(ClientError) -> Issued {
        let userID = try Self.accountName(name)
        try Self.check(password: password)
        try AbuseLimits.check(attemptsPerAddress, address, what: "account attempts from your address")
        let hash: String
        do {
            hash = try await hasher.hash(password)
        } catch {
            logger.error("cannot hash a password", metadata: ["error": "\(error)"])
            throw ClientError(code: .unavailable)
        }
        let creation = try await storing("create an account", userID) { () async throws(StoreError) in
            try await store.create(userID: userID, passwordHash: hash)
        }
        guard creation == .created else { throw ClientError(code: .accountExists) }
        logger.info("account registered", metadata: ["user_id": "\(userID)"])
        return issuer.issue(for: userID)
    }

    func logIn(name: String, password: String, from address: String) async throws(ClientError) -> Issued {
        // A name that is not an account name has no account: the same answer as a wrong
        // password, so that names cannot be probed.
        let userID = (try? Self.accountName(name)) ?? ""
        try AbuseLimits.check(attemptsPerAddress, address, what: "account attempts from your address")
        try AbuseLimits.check(loginsPerAccount, userID, what: "login attempts for this account")
        guard password.utf8.count <= PasswordHasher.maximumBytes, !userID.isEmpty else { throw ClientError(code: .invalidCredentials) }
        let stored = try await storing("read an account", userID) { () async throws(StoreError) in
            try await store.passwordHash(userID: userID)
        }
        guard let stored else {
            await hasher.spendCheckTime(password)
            throw ClientError(code: .invalidCredentials)
        }
        guard await hasher.verify(password, against: stored) else {
            logger.notice("login refused: wrong password", metadata: ["user_id": "\(userID)"])
            throw ClientError(code: .invalidCredentials)
        }
        // The token is valid whether or not the note of the login is written.
        _ = try? await store.recordLogin(userID: userID)
        logger.info("account logged in", metadata: ["user_id": "\(userID)"])
        return issuer.issue(for: userID)
    }

    /// An account name: 3 to 64 letters, digits, `.`, `_` or `-`, starting with a letter
    /// or digit; kept in lower case, so that `Ana` and `ana` are one account.
    static func accountName(_ text: String) throws(ClientError) -> String {
        let name = text.trimmingCharacters(in: .whitespaces).lowercased()
        let allowed = name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0) }
        guard (3...64).contains(name.unicodeScalars.count), allowed, let first = name.unicodeScalars.first, !"._-".unicodeScalars.contains(first)
        else {
            throw ClientError(
                code: .malformedRequest,
                message: "user_id must be 3 to 64 letters (a-z), digits, '.', '_' or '-', starting with a letter or digit"
            )
        }
        return name
    }

    static func check(password: String) throws(ClientError) {
        guard password.count >= PasswordHasher.minimumLength else {
            throw ClientError(code: .weakPassword, message: "the password needs at least \(PasswordHasher.minimumLength) characters")
        }
        guard password.utf8.count <= PasswordHasher.maximumBytes else {
            throw ClientError(code: .malformedRequest, message: "the password is longer than \(PasswordHasher.maximumBytes) bytes")
        }
    }

    private func storing<T>(_ what: String, _ userID: String, _ body: () async throws(StoreError) -> T) async throws(ClientError) -> T {
        do {
            return try await body()
        } catch {
            logger.warning("account store call failed", metadata: ["operation": "\(what)", "user_id": "\(userID)", "error": "\(error)"])
            throw ClientError(code: .unavailable, message: "the database is unavailable; try again shortly")
        }
    }
}
