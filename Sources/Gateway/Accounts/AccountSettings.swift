import Crypto
import Foundation
import Shared

/// `ACCOUNTS=on`: the chat page's register and login, issuing HS256 tokens signed with
/// `JWT_SECRET`. Read after the token rules, whose secret and claims it uses.
struct AccountSettings: Sendable {
    var tokenLifetime: Duration
    var key: SymmetricKey
    var claims: ClaimRules
    /// Registers and logins per client address.
    var attemptsPerAddress: RateLimiter.Rule?
    /// Logins per account name, from any address.
    var loginsPerAccount: RateLimiter.Rule?
    /// scrypt's cost for new hashes (the tests lower it).
    var passwordCost = PasswordHasher.Cost.standard

    /// nil when `ACCOUNTS` is off (the default).
    init?(environment: EnvironmentReader, authentication: Authenticator.Mode) throws(ConfigurationError) {
        guard try environment.bool("ACCOUNTS", default: false) else { return nil }
        guard case .on(let rules) = authentication else {
            throw ConfigurationError(
                variable: "ACCOUNTS",
                problem: "is on with PARLEY_AUTH=off: accounts sign people in with tokens; turn authentication on (with JWT_SECRET) or ACCOUNTS off"
            )
        }
        guard let key = rules.sharedSecret else {
            throw ConfigurationError(
                variable: "ACCOUNTS",
                problem: "is on without JWT_SECRET: an account's tokens are HS256 tokens signed with it; set JWT_SECRET"
            )
        }
        self.key = key
        claims = rules.claims
        tokenLifetime = try environment.seconds("ACCOUNT_TOKEN_TTL_SECONDS", default: .seconds(43_200), range: 60...2_592_000)
        attemptsPerAddress = try LimitSettings.rule(
            environment,
            "RATE_ACCOUNT_ATTEMPTS_PER_MINUTE",
            default: 20,
            "RATE_ACCOUNT_ATTEMPTS_BURST",
            default: 10
        )
        loginsPerAccount = try LimitSettings.rule(
            environment,
            "RATE_LOGINS_PER_ACCOUNT_PER_MINUTE",
            default: 5,
            "RATE_LOGINS_PER_ACCOUNT_BURST",
            default: 10
        )
    }
}
