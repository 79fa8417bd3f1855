import Foundation
import Logging
import Shared

/// The chat page's accounts (`ACCOUNTS=on`): register a user name with a password and
/// log in, each answered with the gateway's own HS256 token. Every attempt costs a
/// scrypt, so attempts are rate-limited per client address, and logins also per
/// account name (a guesser with many addresses still gets few tries at one account).
///
/// An account's user id is `account:<name>`: a namespace of its own, which no API key
/// and no identity provider's token may name (`Authenticator`, `GatewaySettings`), so
/// that an account never shares a user id, and so the conversations, of another
/// sign-in.
struct Accounts: Sendable {
    static let userIDPrefix = "account:"

    let store: any AccountStore
    let hasher: PasswordHasher
    let issuer: AccountTokenIssuer
    let attemptsPerAddress: RateLimiter
    let loginsPerAccount: RateLimiter
    let logger: Logger

    /// `register` and `logIn` answer with this.
    typealias Issued = AccountTokenIssuer.Issued

    func register(name: String, password: String, from address: String) async throws(ClientError) -> Issued {
        let userID = Self.userIDPrefix + (try Self.accountName(name))
        try Self.check(password: password)
        try AbuseLimits.check(attemptsPerAddress, Self.limiterKey(address: address), what: "account attempts from your address")
        let hash = try await hashing { () async throws(PasswordHasher.Failure) in try await hasher.hash(password) }
        let creation = try await storing("create an account", userID) { () async throws(StoreError) in
            try await store.create(userID: userID, passwordHash: hash)
        }
        guard creation == .created else { throw ClientError(code: .accountExists) }
        logger.info("account registered", metadata: ["user_id": "\(userID)"])
        return issuer.issue(for: userID)
    }

    func logIn(name: String, password: String, from address: String) async throws(ClientError) -> Issued {
        try AbuseLimits.check(attemptsPerAddress, Self.limiterKey(address: address), what: "account attempts from your address")
        // A name that is not an account name has no account: the same answer as a wrong
        // password, after the same work, so that names cannot be probed.
        guard let name = try? Self.accountName(name), password.utf8.count <= PasswordHasher.maximumBytes else {
            try await hashing { () async throws(PasswordHasher.Failure) in try await hasher.spendCheckTime(password) }
            throw ClientError(code: .invalidCredentials)
        }
        let userID = Self.userIDPrefix + name
        try AbuseLimits.check(loginsPerAccount, userID, what: "login attempts for this account")
        let stored = try await storing("read an account", userID) { () async throws(StoreError) in
            try await store.passwordHash(userID: userID)
        }
        let matches = try await hashing { () async throws(PasswordHasher.Failure) in
            guard let stored else {
                try await hasher.spendCheckTime(password)
                return false
            }
            return try await hasher.verify(password, against: stored)
        }
        guard matches else {
            logger.notice("login refused", metadata: ["user_id": "\(userID)", "account_exists": "\(stored != nil)"])
            throw ClientError(code: .invalidCredentials)
        }
        // The token is valid whether or not the note of the login is written.
        _ = try? await store.recordLogin(userID: userID)
        logger.info("account logged in", metadata: ["user_id": "\(userID)"])
        return issuer.issue(for: userID)
    }

    /// The limiter key of a client address: an IPv6 address by its /64 (what one
    /// subscriber usually holds), an IPv4 address whole.
    static func limiterKey(address: String) -> String {
        guard address.contains(":") else { return address }
        var groups = address.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        // Expand `::` so that the first four groups are the /64.
        if let gap = groups.firstIndex(of: ""), groups.count < 8 {
            groups.replaceSubrange(gap...gap, with: Array(repeating: "0", count: 8 - groups.count + 1))
        }
        return groups.prefix(4).map { $0.isEmpty ? "0" : $0.lowercased() }.joined(separator: ":") + "::/64"
    }

    /// Runs scrypt, turning its refusals into client errors.
    private func hashing<T>(_ body: () async throws(PasswordHasher.Failure) -> T) async throws(ClientError) -> T {
        do {
            return try await body()
        } catch .busy {
            throw ClientError(code: .overloaded, message: "too many sign-ins at once; try again in a moment", retryAfter: 1)
        } catch {
            logger.error("cannot hash a password", metadata: ["error": "\(error)"])
            throw ClientError(code: .unavailable)
        }
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
