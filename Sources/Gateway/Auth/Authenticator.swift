import Crypto
import Foundation

/// Turns the bearer token of a request into a user id: a static API key mapped to a
/// user id, or a JWT whose `sub` is the user id — HS256 signed with the shared
/// `JWT_SECRET`, or RS256/ES256 signed by an identity provider whose keys are at
/// `JWT_JWKS_URL`. With authentication off, every request is the user named by
/// `?user=` (default `local`).
struct Authenticator: Sendable {
    enum Mode: Sendable {
        case off
        case on(TokenRules)
    }

    /// Which tokens are accepted.
    struct TokenRules: Sendable {
        /// Static keys and the user each stands for (`API_KEYS`).
        var apiKeys: [String: String] = [:]
        /// The HS256 key (`JWT_SECRET`).
        var sharedSecret: SymmetricKey? = nil
        /// The identity provider's key set (`JWT_JWKS_URL`).
        var keySet: KeySetSettings? = nil
        var claims = ClaimRules()

        /// The `alg`s a JWT may have, by what is configured.
        var algorithms: [String] {
            (sharedSecret == nil ? [] : ["HS256"]) + (keySet == nil ? [] : ["RS256", "ES256"])
        }
    }

    /// Where the identity provider's keys are and how long they are kept.
    struct KeySetSettings: Sendable, Equatable {
        var url: String
        var policy = JWKSKeyCache.Policy()
    }

    let mode: Mode
    private let keys: JWKSKeyCache?

    /// `keys` serves the tokens signed by the identity provider; without it they are
    /// refused.
    init(mode: Mode, keys: JWKSKeyCache? = nil) {
        self.mode = mode
        self.keys = keys
    }

    func userID(token: String?, requestedUser: String?, now: Date = Date()) async throws(AuthError) -> String {
        switch mode {
        case .off:
            guard let requestedUser, !requestedUser.isEmpty else { return "local" }
            guard UserID.isValid(requestedUser) else { throw .invalidUser }
            return requestedUser
        case .on(let rules):
            guard let token, !token.isEmpty else { throw .missingToken }
            if let user = rules.apiKeys[token] { return user }
            guard !rules.algorithms.isEmpty else { throw .invalidToken("unknown API key") }
            let jwt = try JSONWebToken(parsing: token)
            try await verifySignature(of: jwt, rules: rules)
            let subject = try jwt.subject(checking: rules.claims, now: now)
            // The accounts' user ids are the gateway's own (HS256 with JWT_SECRET): an
            // identity provider's user never becomes one, whatever its `sub`.
            guard jwt.algorithm == "HS256" || !subject.hasPrefix(Accounts.userIDPrefix) else {
                throw .invalidToken("an identity provider's sub may not start with \"\(Accounts.userIDPrefix)\" (Parley's accounts)")
            }
            if let prefix = UserID.channelPrefix(of: subject) {
                throw .invalidToken("a token's sub may not start with \"\(prefix)\" (the user ids of Parley's WhatsApp and bot channels)")
            }
            return subject
        }
    }

    private func verifySignature(of jwt: JSONWebToken, rules: TokenRules) async throws(AuthError) {
        // The algorithm must be one configured, and each has its own kind of key: an
        // RS256 public key never serves as an HS256 secret.
        guard rules.algorithms.contains(jwt.algorithm) else {
            throw .invalidToken("only alg \(Self.list(rules.algorithms)) is accepted")
        }
        let valid: Bool
        if jwt.algorithm == "HS256", let secret = rules.sharedSecret {
            valid = HS256JWT.isValid(jwt, key: secret)
        } else if let keys {
            valid = try await keys.key(id: jwt.keyID, algorithm: jwt.algorithm).isValidSignature(of: jwt)
        } else {
            throw .keysUnavailable("no key set is configured")
        }
        guard valid else { throw .invalidToken("bad signature") }
    }

    private static func list(_ algorithms: [String]) -> String {
        guard algorithms.count > 1 else { return algorithms.first ?? "" }
        return algorithms.dropLast().joined(separator: ", ") + " or " + algorithms.last!
    }

    /// The token from `Authorization: Bearer …`, else from the `token` query parameter.
    static func token(authorization: String?, query: String?) -> String? {
        if let authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]) }
        }
        return queryValue("token", in: query)
    }

    static func queryValue(_ name: String, in query: String?) -> String? {
        guard let query, let items = URLComponents(string: "?\(query)")?.queryItems else { return nil }
        return items.first(where: { $0.name == name })?.value
    }
}
