import AsyncHTTPClient
import Crypto
import CryptoExtras
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import Gateway

/// Tokens of an identity provider (RS256 / ES256) verified against its key set.
@Suite("Identity provider tokens (JWKS)")
struct JWKSTests {
    let claims: [String: Any] = ["sub": "alice", "exp": Date().timeIntervalSince1970 + 60]
    let clock = ManualInstant()

    func authenticator(
        _ source: ChangingKeySetSource,
        sharedSecret: SymmetricKey? = nil,
        policy: JWKSKeyCache.Policy = .init()
    ) -> (Authenticator, JWKSKeyCache) {
        let clock = self.clock
        let cache = JWKSKeyCache(source: source, policy: policy, logger: Logger(label: "test"), now: { clock.now })
        let rules = Authenticator.TokenRules(sharedSecret: sharedSecret, keySet: .init(url: "http://idp.test/jwks", policy: policy))
        return (Authenticator(mode: .on(rules), keys: cache), cache)
    }

    @Test func rs256AndES256TokensOfTheProviderYieldTheirSubject() async throws {
        let rsa = try TestIdentityProvider.rsaKey("rsa-1")
        let ec = TestIdentityProvider.p256Key("ec-1")
        let (auth, cache) = authenticator(ChangingKeySetSource(try TestIdentityProvider.keySet([rsa, ec])))
        #expect(try await auth.userID(token: TestIdentityProvider.token(claims, key: rsa), requestedUser: nil) == "alice")
        #expect(try await auth.userID(token: TestIdentityProvider.token(claims, key: ec), requestedUser: nil) == "alice")
        #expect(await cache.fetches == 1)
    }

    @Test func forgedAndMismatchedTokensAreRefused() async throws {
        let rsa = try TestIdentityProvider.rsaKey("rsa-1")
        let ec = TestIdentityProvider.p256Key("ec-1")
        let (auth, _) = authenticator(ChangingKeySetSource(try TestIdentityProvider.keySet([rsa, ec])))
        let impostor = try TestIdentityProvider.rsaKey("rsa-1")
        let cases: [(String, AuthError)] = [
            // Another key under the provider's kid.
            (try TestIdentityProvider.token(claims, key: impostor), .invalidToken("bad signature")),
            // An ES256 token naming the RSA key's id.
            (
                try TestIdentityProvider.token(claims, key: TestIdentityProvider.p256Key("x"), kid: "rsa-1"),
                .invalidToken("the identity provider has no ES256 key with kid rsa-1")
            ),
            // The classic confusion: the RSA public key used as an HS256 secret.
            (
                HS256JWT.sign(claims: claims, key: SymmetricKey(data: try rsaPublicKeyBytes(rsa))),
                .invalidToken("only alg RS256 or ES256 is accepted")
            ),
            // A valid signature over expired claims.
            (try TestIdentityProvider.token(["sub": "alice", "exp": 1], key: rsa), .expiredToken),
            // A provider's user named like one of Parley's accounts: never that account.
            (
                try TestIdentityProvider.token(["sub": "account:ana"], key: rsa),
                .invalidToken("an identity provider's sub may not start with \"account:\" (Parley's accounts)")
            ),
        ]
        for (token, expected) in cases {
            await #expect(throws: expected) { try await auth.userID(token: token, requestedUser: nil) }
        }
    }

    @Test func bothSecretAndProviderAcceptTheirOwnAlgorithms() async throws {
        let rsa = try TestIdentityProvider.rsaKey("rsa-1")
        let secret = SymmetricKey(data: Data(repeating: 7, count: 32))
        let (auth, _) = authenticator(ChangingKeySetSource(try TestIdentityProvider.keySet([rsa])), sharedSecret: secret)
        #expect(try await auth.userID(token: HS256JWT.sign(claims: claims, key: secret), requestedUser: nil) == "alice")
        #expect(try await auth.userID(token: TestIdentityProvider.token(claims, key: rsa), requestedUser: nil) == "alice")
        let none = Base64URL.encode(Data(#"{"alg":"none"}"#.utf8)) + "." + Base64URL.encode(Data(#"{"sub":"alice"}"#.utf8)) + "."
        await #expect(throws: AuthError.invalidToken("only alg HS256, RS256 or ES256 is accepted")) {
            try await auth.userID(token: none, requestedUser: nil)
        }
    }

    /// A provider rotates its keys: a token naming the new kid makes the gateway fetch
    /// the set again once.
    @Test func anUnknownKeyIDRefetchesTheSet() async throws {
        let old = try TestIdentityProvider.rsaKey("2026-11")
        let new = try TestIdentityProvider.rsaKey("2026-12")
        let source = ChangingKeySetSource(try TestIdentityProvider.keySet([old]))
        let (auth, _) = authenticator(source)
        #expect(try await auth.userID(token: TestIdentityProvider.token(claims, key: old), requestedUser: nil) == "alice")
        source.serve(try TestIdentityProvider.keySet([new]))
        clock.advance(.seconds(31))
        #expect(try await auth.userID(token: TestIdentityProvider.token(claims, key: new), requestedUser: nil) == "alice")
        #expect(source.fetches == 2)
    }

    /// Made-up kids must not turn every handshake into a request to the provider.
    @Test func refetchesForUnknownKeyIDsAreBounded() async throws {
        let key = try TestIdentityProvider.rsaKey("real")
        let source = ChangingKeySetSource(try TestIdentityProvider.keySet([key]))
        let (auth, _) = authenticator(source)
        for attempt in 0..<200 {
            let token = try TestIdentityProvider.token(claims, key: key, kid: "made-up-\(attempt)")
            await #expect(throws: AuthError.invalidToken("the identity provider has no RS256 key with kid made-up-\(attempt)")) {
                try await auth.userID(token: token, requestedUser: nil)
            }
        }
        #expect(source.fetches == 1)
        clock.advance(.seconds(30))
        _ = try? await auth.userID(token: TestIdentityProvider.token(claims, key: key, kid: "made-up-again"), requestedUser: nil)
        #expect(source.fetches == 2)
    }

    @Test func concurrentHandshakesShareOneFetch() async throws {
        let key = TestIdentityProvider.p256Key("ec")
        let source = ChangingKeySetSource(try TestIdentityProvider.keySet([key]))
        source.delay = .milliseconds(100)
        let (auth, _) = authenticator(source)
        let token = try TestIdentityProvider.token(claims, key: key)
        let users = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<50 { group.addTask { try await auth.userID(token: token, requestedUser: nil) } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(users == Array(repeating: "alice", count: 50))
        #expect(source.fetches == 1)
    }

    @Test func keysAreRefreshedWhenOldAndKeptWhenTheProviderIsDown() async throws {
        let key = try TestIdentityProvider.rsaKey("k")
        let source = ChangingKeySetSource(try TestIdentityProvider.keySet([key]))
        let (auth, _) = authenticator(source, policy: .init(refreshAfter: .seconds(600), minRefetchInterval: .seconds(30)))
        let token = try TestIdentityProvider.token(claims, key: key)
        _ = try await auth.userID(token: token, requestedUser: nil)
        clock.advance(.seconds(599))
        _ = try await auth.userID(token: token, requestedUser: nil)
        #expect(source.fetches == 1)
        clock.advance(.seconds(1))
        source.fail("connection refused")
        #expect(try await auth.userID(token: token, requestedUser: nil) == "alice")
        #expect(source.fetches == 2)
    }

    /// The provider unreachable and no key held yet: the client may try again (503),
    /// its token is not called invalid.
    @Test func noKeysYetMeansUnavailableNotInvalid() async throws {
        let key = try TestIdentityProvider.rsaKey("k")
        let source = ChangingKeySetSource(try TestIdentityProvider.keySet([key]))
        source.fail("GET http://idp.test/jwks answered HTTP 502")
        let (auth, _) = authenticator(source)
        let token = try TestIdentityProvider.token(claims, key: key)
        await #expect(throws: AuthError.keysUnavailable("GET http://idp.test/jwks answered HTTP 502")) {
            try await auth.userID(token: token, requestedUser: nil)
        }
        #expect(GatewayHTTPError(AuthError.keysUnavailable("x")).status == .serviceUnavailable)
        source.serve(try TestIdentityProvider.keySet([key]))
        clock.advance(.seconds(30))
        #expect(try await auth.userID(token: token, requestedUser: nil) == "alice")
    }

    @Test func theKeySetKeepsOnlyKeysItCanVerifyWith() throws {
        let rsa = try TestIdentityProvider.rsaKey("rsa")
        let weak = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024)).publicKey.getKeyPrimitives()
        let extra: [[String: Any]] = [
            ["kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"],
            ["kty": "RSA", "kid": "weak", "n": Base64URL.encode(weak.modulus), "e": Base64URL.encode(weak.publicExponent)],
            ["kty": "RSA", "kid": "ps256", "alg": "PS256", "n": "AQAB", "e": "AQAB"],
            ["kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"],
            [
                "kty": "EC", "kid": "broken", "crv": "P-256", "x": Base64URL.encode(Data(repeating: 1, count: 32)),
                "y": Base64URL.encode(Data(repeating: 2, count: 32)),
            ],
            ["kty": "oct", "kid": "secret", "k": "c2VjcmV0"],
            ["kid": 5],
        ]
        let set = try JSONWebKeySet(parsing: TestIdentityProvider.document([rsa], extra: extra))
        #expect(set.keys.map(\.id) == ["rsa"])
        #expect(throws: KeySetError.unreadable("it has no RS256 or ES256 signing key")) {
            try JSONWebKeySet(parsing: TestIdentityProvider.document([], extra: extra))
        }
        #expect(throws: KeySetError.unreadable("not a JWKS document (a JSON object with \"keys\")")) {
            try JSONWebKeySet(parsing: Array("<html>".utf8))
        }
    }

    @Test func aTokenWithoutKidUsesTheOnlyKeyOfItsAlgorithm() async throws {
        let one = try TestIdentityProvider.rsaKey("one")
        let two = try TestIdentityProvider.rsaKey("two")
        let (single, _) = authenticator(ChangingKeySetSource(try TestIdentityProvider.keySet([one])))
        #expect(try await single.userID(token: TestIdentityProvider.token(claims, key: one, kid: .some(nil)), requestedUser: nil) == "alice")
        let (several, _) = authenticator(ChangingKeySetSource(try TestIdentityProvider.keySet([one, two])))
        await #expect(throws: AuthError.invalidToken("the token has no kid and the key set has several RS256 keys")) {
            try await several.userID(token: TestIdentityProvider.token(claims, key: one, kid: .some(nil)), requestedUser: nil)
        }
    }

    private func rsaPublicKeyBytes(_ key: TestIdentityProvider.Key) throws -> Data {
        guard case .rsa(let privateKey) = key.signing else { return Data() }
        return Data(privateKey.publicKey.pemRepresentation.utf8)
    }
}

/// The key set fetched over HTTP from a local identity provider.
@Suite("JWKS over HTTP")
struct HTTPKeySetSourceTests {
    @Test func theKeySetIsFetchedAndBadAnswersAreNamed() async throws {
        let key = TestIdentityProvider.p256Key("ec")
        let document = try TestIdentityProvider.document([key])
        let router = Router()
        router.get("/certs") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: document)))
        }
        router.get("/down") { _, _ in Response(status: .badGateway) }
        // Headers at once, then a body that never comes (found in review: the fetch
        // and every handshake waiting on it hung for good).
        router.get("/stalled") { _, _ in
            Response(
                status: .ok,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "{\"keys\":["))
                    try await Task.sleep(for: .seconds(3))
                    try await writer.finish(nil)
                }
            )
        }
        router.get("/huge") { _, _ in
            Response(status: .ok, body: .init(byteBuffer: ByteBuffer(repeating: UInt8(ascii: " "), count: JSONWebKeySet.maxBytes + 1)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try await client.shutdown() } }
        try await app.test(.live) { testClient in
            let base = "http://127.0.0.1:\(try #require(testClient.port))"
            let set = try await HTTPKeySetSource(client: client, url: "\(base)/certs").fetchKeySet()
            #expect(set.keys.map(\.id) == ["ec"])
            await #expect(throws: KeySetError.fetchFailed("GET \(base)/down answered HTTP 502")) {
                try await HTTPKeySetSource(client: client, url: "\(base)/down").fetchKeySet()
            }
            await #expect(throws: KeySetError.unreadable("larger than \(JSONWebKeySet.maxBytes) bytes")) {
                try await HTTPKeySetSource(client: client, url: "\(base)/huge").fetchKeySet()
            }
            let started = ContinuousClock.now
            await #expect(throws: KeySetError.fetchFailed("GET \(base)/stalled: no whole answer within 500 ms")) {
                try await HTTPKeySetSource(client: client, url: "\(base)/stalled", timeout: .milliseconds(500)).fetchKeySet()
            }
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }
}
