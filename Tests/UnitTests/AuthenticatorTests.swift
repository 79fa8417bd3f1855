import Crypto
import Foundation
import Testing

@testable import Gateway
@testable import Shared

@Suite("Authentication")
struct AuthenticatorTests {
    let key = SymmetricKey(data: Data("0123456789abcdef0123456789abcdef".utf8))
    var authenticator: Authenticator { Authenticator(mode: .on(.init(apiKeys: ["static-key": "kiosk"], sharedSecret: key))) }

    @Test func aValidJWTYieldsItsSubject() async throws {
        let token = HS256JWT.sign(claims: ["sub": "alice", "exp": Date().timeIntervalSince1970 + 60], key: key)
        #expect(try await authenticator.userID(token: token, requestedUser: "mallory") == "alice")
    }

    @Test func anAPIKeyYieldsItsUser() async throws {
        #expect(try await authenticator.userID(token: "static-key", requestedUser: nil) == "kiosk")
    }

    @Test func badTokensAreRefusedWithTheirReason() async {
        let otherKey = SymmetricKey(data: Data("ffffffffffffffffffffffffffffffff".utf8))
        let forged = HS256JWT.sign(claims: ["sub": "alice"], key: otherKey)
        let expired = HS256JWT.sign(claims: ["sub": "alice", "exp": Date().timeIntervalSince1970 - 1], key: key)
        let noSubject = HS256JWT.sign(claims: ["name": "alice"], key: key)
        let unsignedHeader = Base64URL.encode(Data(#"{"alg":"none"}"#.utf8))
        let payload = Base64URL.encode(Data(#"{"sub":"alice"}"#.utf8))
        let cases: [(String?, AuthError)] = [
            (nil, .missingToken),
            ("", .missingToken),
            ("unknown-key", .invalidToken("not a JWT (expected three dot-separated parts)")),
            (forged, .invalidToken("bad signature")),
            (expired, .expiredToken),
            (noSubject, .invalidToken("no sub claim")),
            ("\(unsignedHeader).\(payload).", .invalidToken("only alg HS256 is accepted")),
        ]
        for (token, expected) in cases {
            await #expect(throws: expected) { try await authenticator.userID(token: token, requestedUser: nil) }
        }
    }

    /// A time claim that is not a number switched its check off before.
    @Test(arguments: [
        (#"{"sub":"alice","exp":"never"}"#, AuthError.invalidToken("exp and nbf must be numbers")),
        (#"{"sub":"alice","exp":true}"#, .invalidToken("exp and nbf must be numbers")),
        (#"{"sub":"alice","nbf":"2020-01-01"}"#, .invalidToken("exp and nbf must be numbers")),
        (#"{"sub":"alice","exp":null}"#, .invalidToken("exp and nbf must be numbers")),
        (#"{"sub":"\#(String(repeating: "a", count: 300))"}"#, .invalidToken("sub must be at most 256 bytes without control characters")),
        (#"{"sub":"ali\u0007ce"}"#, .invalidToken("sub must be at most 256 bytes without control characters")),
    ])
    func malformedClaimsRefuseTheToken(json: String, expected: AuthError) async throws {
        let claims = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let token = HS256JWT.sign(claims: claims, key: key)
        await #expect(throws: expected) { try await authenticator.userID(token: token, requestedUser: nil) }
    }

    @Test func issuerAndAudienceAreCheckedWhenConfigured() async throws {
        let strict = Authenticator(mode: .on(.init(sharedSecret: key, claims: .init(issuer: "https://id.example", audience: "parley"))))
        let good = HS256JWT.sign(claims: ["sub": "alice", "iss": "https://id.example", "aud": ["other", "parley"]], key: key)
        #expect(try await strict.userID(token: good, requestedUser: nil) == "alice")
        let foreign = HS256JWT.sign(claims: ["sub": "alice", "iss": "https://evil.example", "aud": "parley"], key: key)
        await #expect(throws: AuthError.invalidToken("iss is not https://id.example")) { try await strict.userID(token: foreign, requestedUser: nil) }
        let elsewhere = HS256JWT.sign(claims: ["sub": "alice", "iss": "https://id.example", "aud": "billing"], key: key)
        await #expect(throws: AuthError.invalidToken("aud does not name parley")) { try await strict.userID(token: elsewhere, requestedUser: nil) }
    }

    @Test func shortSecretsAndKeysAreRefusedAtStart() {
        #expect { try GatewaySettings(environment: EnvironmentReader(["JWT_SECRET": String(repeating: "k", count: 31)])) } throws: { error in
            (error as? ConfigurationError)?.variable == "JWT_SECRET"
        }
        #expect { try GatewaySettings(environment: EnvironmentReader(["API_KEYS": "short:bob"])) } throws: { error in
            (error as? ConfigurationError)?.variable == "API_KEYS"
        }
    }

    @Test func withAuthenticationOffTheUserIsWhoTheQuerySays() async throws {
        let off = Authenticator(mode: .off)
        #expect(try await off.userID(token: nil, requestedUser: "bob") == "bob")
        #expect(try await off.userID(token: nil, requestedUser: nil) == "local")
        // The user id goes to the database and the logs.
        for bad in [String(repeating: "u", count: 257), "bob\u{1B}[2J", "a\nb"] {
            await #expect(throws: AuthError.invalidUser) { try await off.userID(token: nil, requestedUser: bad) }
        }
    }

    @Test func theTokenComesFromTheHeaderOrTheQuery() {
        #expect(Authenticator.token(authorization: "Bearer abc", query: "token=zzz") == "abc")
        #expect(Authenticator.token(authorization: "bearer abc", query: nil) == "abc")
        #expect(Authenticator.token(authorization: nil, query: "user=x&token=q%2Bq") == "q+q")
        #expect(Authenticator.token(authorization: "Basic Zm9v", query: nil) == nil)
    }
}
