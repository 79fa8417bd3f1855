import Crypto
import Foundation
import Logging
import ParleyTestSupport
import Testing

@testable import Gateway
@testable import Shared

/// The chat page's accounts: scrypt hashes in PHC form, register and login, their
/// limits and errors, and the settings that turn them on.
@Suite("Accounts")
struct AccountsTests {
    static let secret = String(repeating: "s", count: 32)
    /// A cheap cost for tests; the standard one is checked once.
    static let cheap = PasswordHasher.Cost(logRounds: 10, blockSize: 8, parallelism: 1)

    func accounts(
        store: any AccountStore = InMemoryAccountStore(),
        perAddress: RateLimiter.Rule? = nil,
        perAccount: RateLimiter.Rule? = nil
    ) -> Accounts {
        Accounts(
            store: store,
            hasher: PasswordHasher(cost: Self.cheap),
            issuer: AccountTokenIssuer(
                key: SymmetricKey(data: Data(Self.secret.utf8)),
                claims: ClaimRules(issuer: "parley"),
                lifetime: .seconds(3600)
            ),
            attemptsPerAddress: RateLimiter(perAddress),
            loginsPerAccount: RateLimiter(perAccount),
            logger: Logger(label: "test")
        )
    }

    /// The user a token stands for, as the gateway checks it.
    func user(of issued: Accounts.Issued) async throws -> String {
        var rules = Authenticator.TokenRules(claims: ClaimRules(issuer: "parley"))
        rules.sharedSecret = SymmetricKey(data: Data(Self.secret.utf8))
        return try await Authenticator(mode: .on(rules)).userID(token: issued.token, requestedUser: nil)
    }

    func code(_ body: () async throws(ClientError) -> Accounts.Issued) async -> ErrorCode? {
        do {
            _ = try await body()
            return nil
        } catch {
            return error.code
        }
    }

    /// The code a registration is refused with (nil: registered).
    func register(_ accounts: Accounts, _ name: String, _ password: String = "correct horse", from address: String = "a") async -> ErrorCode? {
        await code { () async throws(ClientError) in try await accounts.register(name: name, password: password, from: address) }
    }

    /// The code a login is refused with (nil: logged in).
    func logIn(_ accounts: Accounts, _ name: String, _ password: String = "correct horse", from address: String = "a") async -> ErrorCode? {
        await code { () async throws(ClientError) in try await accounts.logIn(name: name, password: password, from: address) }
    }

    // MARK: Hashes

    /// RFC 7914 §12's third test vector, written in the stored form, verifies: the form
    /// and its base64 are the standard ones, not only this code's own.
    @Test func theRFCVectorInPHCFormVerifies() async throws {
        let salt = Data("SodiumChloride".utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        let hex =
            "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887"
        let bytes = stride(from: 0, to: hex.count, by: 2).map { offset in
            UInt8(hex[hex.index(hex.startIndex, offsetBy: offset)..<hex.index(hex.startIndex, offsetBy: offset + 2)], radix: 16)!
        }
        let hash = Data(bytes).base64EncodedString().replacingOccurrences(of: "=", with: "")
        let stored = "$scrypt$ln=14,r=8,p=1$\(salt)$\(hash)"
        #expect(try await PasswordHasher().verify("pleaseletmein", against: stored))
        #expect(try await !PasswordHasher().verify("pleaseletmeIn", against: stored))
    }

    @Test func aHashVerifiesItsPasswordOnlyAndSaltsDiffer() async throws {
        let hasher = PasswordHasher(cost: Self.cheap)
        let first = try await hasher.hash("correct horse")
        let second = try await hasher.hash("correct horse")
        #expect(first.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        #expect(first != second)
        #expect(try await hasher.verify("correct horse", against: first))
        #expect(try await hasher.verify("correct horse", against: second))
        #expect(try await !hasher.verify("correct horsE", against: first))
        #expect(try await !hasher.verify("", against: first))
    }

    @Test func theStandardCostIsOWASPsMinimum() async throws {
        let stored = try await PasswordHasher().hash("correct horse")
        #expect(stored.hasPrefix("$scrypt$ln=15,r=8,p=1$"))
        #expect(PasswordHasher.Cost.standard.memoryBytes == 32 << 20)
        #expect(try await PasswordHasher(cost: Self.cheap).verify("correct horse", against: stored))
    }

    static let filler = String(repeating: "A", count: 43)

    @Test(arguments: [
        "", "plain", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "$scrypt$ln=15,r=8$c2FsdHNhbHQ$\(filler)",
        "$scrypt$ln=15,r=8,p=1,x=2$c2FsdHNhbHQ$\(filler)",
        // A cost no login should pay: 2^30 rounds, a block size of 1,000, 128 MiB.
        "$scrypt$ln=30,r=8,p=1$c2FsdHNhbHQ$\(filler)", "$scrypt$ln=15,r=1000,p=1$c2FsdHNhbHQ$\(filler)",
        "$scrypt$ln=17,r=8,p=1$c2FsdHNhbHQ$\(filler)", "$scrypt$ln=16,r=16,p=1$c2FsdHNhbHQ$\(filler)",
        "$scrypt$ln=15,r=8,p=1$c2Fs$\(filler)", "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$AAAA", "$scrypt$ln=15,r=8,p=1$!!!$***",
    ])
    func aStoredValueThatIsNotAnAcceptableHashMatchesNothing(stored: String) async throws {
        #expect(PasswordHasher.parse(stored) == nil)
        #expect(try await !PasswordHasher(cost: Self.cheap).verify("anything", against: stored))
    }

    @Test func hashingBeyondItsAdmissionIsRefusedAtOnce() async throws {
        var hasher = PasswordHasher(cost: Self.cheap)
        hasher.maxAdmitted = 0
        await #expect(throws: PasswordHasher.Failure.busy) { try await hasher.hash("correct horse") }
    }

    // MARK: Register and log in

    @Test func aRegisteredAccountLogsInAndItsTokensNameIt() async throws {
        let store = InMemoryAccountStore()
        let accounts = accounts(store: store)
        let registered = try await accounts.register(name: " Ana.Silva ", password: "correct horse", from: "10.0.0.1")
        #expect(registered.userID == "account:ana.silva")
        #expect(try await user(of: registered) == "account:ana.silva")
        #expect(registered.expiresAt.timeIntervalSinceNow > 3500 && registered.expiresAt.timeIntervalSinceNow <= 3600)
        let loggedIn = try await accounts.logIn(name: "ANA.SILVA", password: "correct horse", from: "10.0.0.2")
        #expect(try await user(of: loggedIn) == "account:ana.silva")
        #expect(store.loginCount(userID: "account:ana.silva") == 1)
        // The password is stored hashed, never as it is.
        let stored = try #require(try await store.passwordHash(userID: "account:ana.silva"))
        #expect(!stored.contains("correct horse") && stored.hasPrefix("$scrypt$"))
    }

    @Test func aTakenNameAWeakPasswordAndABadNameAreRefusedByCode() async throws {
        let sessions = InMemoryConversationStore()
        try await sessions.createSession(SessionRecord(id: UUID(), userID: "account:carla"))
        try await sessions.createSession(SessionRecord(id: UUID(), userID: "dora"))
        let accounts = accounts(store: InMemoryAccountStore(sessions: sessions))
        #expect(await register(accounts, "ana") == nil)
        #expect(await register(accounts, "ANA", "another one") == .accountExists)
        // Sessions under an account's id made without the account (a token signed with
        // JWT_SECRET, or authentication off) are not taken over.
        #expect(await register(accounts, "carla") == .accountExists)
        // Another sign-in's user (an API key's, an identity provider's) lives in another
        // namespace: the account "dora" is not the user "dora" and never sees its sessions.
        let dora = try await accounts.register(name: "dora", password: "correct horse", from: "a")
        #expect(dora.userID == "account:dora")
        #expect(await register(accounts, "bia", "short") == .weakPassword)
        for name in ["ab", "-ana", "ana silva", "anã", String(repeating: "a", count: 65), "ana/../x", "account:x"] {
            #expect(await register(accounts, name) == .malformedRequest, "\(name)")
        }
        #expect(await register(accounts, "carla2", String(repeating: "p", count: PasswordHasher.maximumBytes + 1)) == .malformedRequest)
    }

    @Test func aWrongPasswordAnUnknownNameAndAnInvalidNameAllGetTheSameAnswerAfterOneScrypt() async throws {
        let accounts = accounts()
        #expect(await register(accounts, "ana") == nil)
        // Each answer costs exactly one scrypt, so that the time taken does not tell an
        // existing name from another (counted, not timed: a timing is noise in a test).
        for (name, password) in [("ana", "wrong horse"), ("nobody", "correct horse"), ("?", "correct horse"), ("ana", "")] {
            let before = accounts.hasher.runs
            #expect(await logIn(accounts, name, password) == .invalidCredentials, "\(name)")
            #expect(accounts.hasher.runs == before + 1, "\(name)")
        }
    }

    @Test func attemptsAreLimitedPerAddressAndLoginsPerAccount() async throws {
        let accounts = accounts(perAddress: .init(perMinute: 1, burst: 3), perAccount: .init(perMinute: 1, burst: 2))
        #expect(await register(accounts, "ana", from: "10.0.0.1") == nil)
        // Two guesses at ana from two addresses, then a third from a new address is refused.
        #expect(await logIn(accounts, "ana", "guess 1", from: "10.0.0.2") == .invalidCredentials)
        #expect(await logIn(accounts, "ana", "guess 2", from: "10.0.0.3") == .invalidCredentials)
        #expect(await logIn(accounts, "ana", from: "10.0.0.4") == .rateLimited)
        // One address: its burst of three attempts, then refused whatever the account.
        #expect(await register(accounts, "bia", from: "10.0.0.9") == nil)
        #expect(await register(accounts, "carla", from: "10.0.0.9") == nil)
        #expect(await logIn(accounts, "bia", from: "10.0.0.9") == nil)
        #expect(await logIn(accounts, "carla", from: "10.0.0.9") == .rateLimited)
        #expect(await register(accounts, "dora", from: "10.0.0.9") == .rateLimited)
        // Malformed names do not share one account bucket: they are limited by address only.
        let loose = self.accounts(perAccount: .init(perMinute: 1, burst: 1))
        #expect(await logIn(loose, "?", from: "10.0.1.1") == .invalidCredentials)
        #expect(await logIn(loose, "!", from: "10.0.1.2") == .invalidCredentials)
    }

    @Test func addressesAreLimitedByHostOrIPv6Subnet() {
        #expect(Accounts.limiterKey(address: "10.0.0.1") == "10.0.0.1")
        #expect(Accounts.limiterKey(address: "2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64")
        #expect(Accounts.limiterKey(address: "2001:DB8:1:2:bbbb:cccc:dddd:eeee") == "2001:db8:1:2::/64")
        #expect(Accounts.limiterKey(address: "2001:db8::5") == "2001:db8:0:0::/64")
        #expect(Accounts.limiterKey(address: "::1") == "0:0:0:0::/64")
    }

    @Test func aStoreOutageIsUnavailableAndCreatesNothing() async throws {
        let sessions = InMemoryConversationStore()
        let store = InMemoryAccountStore(sessions: sessions)
        let accounts = accounts(store: store)
        sessions.failEveryCall(with: .unavailable("down"))
        #expect(await register(accounts, "ana") == .unavailable)
        sessions.failEveryCall(with: nil)
        #expect(try await store.passwordHash(userID: "account:ana") == nil)
        #expect(await logIn(self.accounts(store: FailingAccountStore()), "ana") == .unavailable)
    }

    // MARK: Settings

    @Test func accountsAreOffByDefaultAndOnOnlyWithTokensSignedByJWTSecret() throws {
        let base = ["JWT_SECRET": Self.secret]
        #expect(try GatewaySettings(environment: EnvironmentReader(base)).accounts == nil)
        let on = try #require(
            try GatewaySettings(environment: EnvironmentReader(base.merging(["ACCOUNTS": "on", "ACCOUNT_TOKEN_TTL_SECONDS": "600"]) { $1 })).accounts
        )
        #expect(on.tokenLifetime == .seconds(600))
        #expect(on.attemptsPerAddress == .init(perMinute: 20, burst: 10))
        #expect(on.loginsPerAccount == .init(perMinute: 5, burst: 10))
        for environment in [
            ["ACCOUNTS": "on", "PARLEY_AUTH": "off", "GATEWAY_HOST": "127.0.0.1"],
            ["ACCOUNTS": "on", "API_KEYS": "key-0123456789abcdef:ana"],
        ] {
            #expect { try GatewaySettings(environment: EnvironmentReader(environment)) } throws: { error in
                (error as? ConfigurationError)?.variable == "ACCOUNTS"
            }
        }
        #expect {
            try GatewaySettings(environment: EnvironmentReader(base.merging(["ACCOUNTS": "on", "ACCOUNT_TOKEN_TTL_SECONDS": "5"]) { $1 }))
        } throws: { error in
            (error as? ConfigurationError)?.variable == "ACCOUNT_TOKEN_TTL_SECONDS"
        }
        // An API key may not name an account's user id.
        #expect { try GatewaySettings(environment: EnvironmentReader(["API_KEYS": "key-0123456789abcdef:account:ana"])) } throws: { error in
            (error as? ConfigurationError)?.variable == "API_KEYS"
        }
    }

    @Test func aSessionCursorReadsBackExactlyAndRefusesOtherText() {
        let cursor = SessionCursor(startedAtMicroseconds: 1_800_000_000_123_456, id: UUID())
        #expect(SessionCursor(text: cursor.text) == cursor)
        #expect(SessionCursor(text: SessionCursor.top.text) == SessionCursor.top)
        // Beyond the last representable start: refused here, not an overflow in SQL.
        let beyond = "\(SessionCursor.top.startedAtMicroseconds + 1)_\(UUID().uuidString)"
        for text in [
            "", "12", "x_\(UUID().uuidString)", "-5_\(UUID().uuidString)", "12_not-a-uuid", beyond, "9223372036854775807_\(UUID().uuidString)",
        ] {
            #expect(SessionCursor(text: text) == nil, "\(text)")
        }
    }
}

/// An account store whose database is down.
struct FailingAccountStore: AccountStore {
    func create(userID: String, passwordHash: String) async throws(StoreError) -> AccountCreation { throw .unavailable("down") }
    func passwordHash(userID: String) async throws(StoreError) -> String? { throw .unavailable("down") }
    func recordLogin(userID: String) async throws(StoreError) { throw .unavailable("down") }
}
