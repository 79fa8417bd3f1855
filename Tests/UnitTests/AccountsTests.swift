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

    // MARK: Hashes

    /// RFC 7914 §12's third test vector, written in the stored form, verifies: the form
    /// and its base64 are the standard ones, not only this code's own.
    @Test func theRFCVectorInPHCFormVerifies() async {
        let salt = Data("SodiumChloride".utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        let hex =
            "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887"
        let bytes = stride(from: 0, to: hex.count, by: 2).map { offset in
            UInt8(hex[hex.index(hex.startIndex, offsetBy: offset)..<hex.index(hex.startIndex, offsetBy: offset + 2)], radix: 16)!
        }
        let hash = Data(bytes).base64EncodedString().replacingOccurrences(of: "=", with: "")
        let stored = "$scrypt$ln=14,r=8,p=1$\(salt)$\(hash)"
        #expect(await PasswordHasher().verify("pleaseletmein", against: stored))
        #expect(await !PasswordHasher().verify("pleaseletmeIn", against: stored))
    }

    @Test func aHashVerifiesItsPasswordOnlyAndSaltsDiffer() async throws {
        let hasher = PasswordHasher(cost: Self.cheap)
        let first = try await hasher.hash("correct horse")
        let second = try await hasher.hash("correct horse")
        #expect(first.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        #expect(first != second)
        #expect(await hasher.verify("correct horse", against: first))
        #expect(await hasher.verify("correct horse", against: second))
        #expect(await !hasher.verify("correct horsE", against: first))
        #expect(await !hasher.verify("", against: first))
    }

    @Test func theStandardCostIsOWASPsMinimum() async throws {
        let stored = try await PasswordHasher().hash("correct horse")
        #expect(stored.hasPrefix("$scrypt$ln=15,r=8,p=1$"))
        #expect(await PasswordHasher(cost: Self.cheap).verify("correct horse", against: stored))
    }

    @Test(arguments: [
        "", "plain", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "$scrypt$ln=15,r=8$c2FsdHNhbHQ$\(String(repeating: "A", count: 43))",
        "$scrypt$ln=15,r=8,p=1,x=2$c2FsdHNhbHQ$\(String(repeating: "A", count: 43))",
        // A cost no login should pay: 2^30 rounds, or a block size of 1,000.
        "$scrypt$ln=30,r=8,p=1$c2FsdHNhbHQ$\(String(repeating: "A", count: 43))",
        "$scrypt$ln=15,r=1000,p=1$c2FsdHNhbHQ$\(String(repeating: "A", count: 43))",
        "$scrypt$ln=15,r=8,p=1$c2Fs$\(String(repeating: "A", count: 43))", "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$AAAA", "$scrypt$ln=15,r=8,p=1$!!!$***",
    ])
    func aStoredValueThatIsNotAnAcceptableHashMatchesNothing(stored: String) async {
        #expect(PasswordHasher.parse(stored) == nil)
        #expect(await !PasswordHasher(cost: Self.cheap).verify("anything", against: stored))
    }

    // MARK: Register and log in

    @Test func aRegisteredAccountLogsInAndItsTokensNameIt() async throws {
        let store = InMemoryAccountStore()
        let accounts = accounts(store: store)
        let registered = try await accounts.register(name: " Ana.Silva ", password: "correct horse", from: "10.0.0.1")
        #expect(registered.userID == "ana.silva")
        #expect(try await user(of: registered) == "ana.silva")
        #expect(registered.expiresAt.timeIntervalSinceNow > 3500 && registered.expiresAt.timeIntervalSinceNow <= 3600)
        let loggedIn = try await accounts.logIn(name: "ANA.SILVA", password: "correct horse", from: "10.0.0.2")
        #expect(try await user(of: loggedIn) == "ana.silva")
        #expect(store.loginCount(userID: "ana.silva") == 1)
        // The password is stored hashed, never as it is.
        let stored = try #require(try await store.passwordHash(userID: "ana.silva"))
        #expect(!stored.contains("correct horse") && stored.hasPrefix("$scrypt$"))
    }

    @Test func aTakenNameAWeakPasswordAndABadNameAreRefusedByCode() async throws {
        let sessions = InMemoryConversationStore()
        try await sessions.createSession(SessionRecord(id: UUID(), userID: "apikey-user"))
        let accounts = accounts(store: InMemoryAccountStore(sessions: sessions))
        _ = try await accounts.register(name: "ana", password: "correct horse", from: "a")
        #expect(
            await code { () async throws(ClientError) in try await accounts.register(name: "ANA", password: "another one", from: "a") }
                == .accountExists
        )
        // A user of an API key or an identity provider owns sessions under that id: an
        // account must not take them over.
        #expect(
            await code { () async throws(ClientError) in try await accounts.register(name: "apikey-user", password: "correct horse", from: "a") }
                == .accountExists
        )
        #expect(
            await code { () async throws(ClientError) in try await accounts.register(name: "bia", password: "short", from: "a") } == .weakPassword
        )
        for name in ["ab", "-ana", "ana silva", "anã", String(repeating: "a", count: 65), "ana/../x"] {
            #expect(
                await code { () async throws(ClientError) in try await accounts.register(name: name, password: "correct horse", from: "a") }
                    == .malformedRequest,
                "\(name)"
            )
        }
        let long = String(repeating: "p", count: PasswordHasher.maximumBytes + 1)
        #expect(
            await code { () async throws(ClientError) in try await accounts.register(name: "carla", password: long, from: "a") } == .malformedRequest
        )
    }

    @Test func aWrongPasswordAnUnknownNameAndAnInvalidNameAllGetTheSameAnswer() async throws {
        let accounts = accounts()
        _ = try await accounts.register(name: "ana", password: "correct horse", from: "a")
        for (name, password) in [("ana", "wrong horse"), ("nobody", "correct horse"), ("?", "correct horse"), ("ana", "")] {
            #expect(
                await code { () async throws(ClientError) in try await accounts.logIn(name: name, password: password, from: "a") }
                    == .invalidCredentials
            )
        }
    }

    @Test func attemptsAreLimitedPerAddressAndLoginsPerAccount() async throws {
        let accounts = accounts(perAddress: .init(perMinute: 1, burst: 3), perAccount: .init(perMinute: 1, burst: 2))
        _ = try await accounts.register(name: "ana", password: "correct horse", from: "10.0.0.1")
        // Two guesses at ana from two addresses, then a third from a new address is refused.
        #expect(
            await code { () async throws(ClientError) in try await accounts.logIn(name: "ana", password: "guess 1", from: "10.0.0.2") }
                == .invalidCredentials
        )
        #expect(
            await code { () async throws(ClientError) in try await accounts.logIn(name: "ana", password: "guess 2", from: "10.0.0.3") }
                == .invalidCredentials
        )
        #expect(
            await code { () async throws(ClientError) in try await accounts.logIn(name: "ana", password: "correct horse", from: "10.0.0.4") }
                == .rateLimited
        )
        // One address: its burst of three attempts, then refused whatever the account.
        _ = try await accounts.register(name: "bia", password: "correct horse", from: "10.0.0.9")
        _ = try await accounts.register(name: "carla", password: "correct horse", from: "10.0.0.9")
        #expect(
            await code { () async throws(ClientError) in try await accounts.logIn(name: "bia", password: "correct horse", from: "10.0.0.9") } == nil
        )
        #expect(
            await code { () async throws(ClientError) in try await accounts.logIn(name: "carla", password: "correct horse", from: "10.0.0.9") }
                == .rateLimited
        )
        #expect(
            await code { () async throws(ClientError) in try await accounts.register(name: "dora", password: "correct horse", from: "10.0.0.9") }
                == .rateLimited
        )
    }

    @Test func aStoreOutageIsUnavailableAndCreatesNothing() async throws {
        let sessions = InMemoryConversationStore()
        let store = InMemoryAccountStore(sessions: sessions)
        let accounts = accounts(store: store)
        sessions.failEveryCall(with: .unavailable("down"))
        #expect(
            await code { () async throws(ClientError) in try await accounts.register(name: "ana", password: "correct horse", from: "a") }
                == .unavailable
        )
        sessions.failEveryCall(with: nil)
        #expect(try await store.passwordHash(userID: "ana") == nil)
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
        } throws: {
            error in (error as? ConfigurationError)?.variable == "ACCOUNT_TOKEN_TTL_SECONDS"
        }
    }

    @Test func aSessionCursorReadsBackExactlyAndRefusesOtherText() {
        let cursor = SessionCursor(startedAtMicroseconds: 1_800_000_000_123_456, id: UUID())
        #expect(SessionCursor(text: cursor.text) == cursor)
        for text in ["", "12", "x_\(UUID().uuidString)", "-5_\(UUID().uuidString)", "12_not-a-uuid", "12"] {
            #expect(SessionCursor(text: text) == nil, "\(text)")
        }
    }
}
