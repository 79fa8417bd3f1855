import Crypto
import Foundation
import Testing

@testable import Gateway

@Suite("Authentication")
struct AuthenticatorTests {
    let key = SymmetricKey(data: Data("0123456789abcdef0123456789abcdef".utf8))
    var authenticator: Authenticator { Authenticator(mode: .on(jwtSecret: key, apiKeys: ["static-key": "kiosk"])) }

    @Test func aValidJWTYieldsItsSubject() throws {
        let token = HS256JWT.sign(claims: ["sub": "alice", "exp": Date().timeIntervalSince1970 + 60], key: key)
        #expect(try authenticator.userID(token: token, requestedUser: "mallory") == "alice")
    }

    @Test func anAPIKeyYieldsItsUser() throws {
        #expect(try authenticator.userID(token: "static-key", requestedUser: nil) == "kiosk")
    }

    @Test func badTokensAreRefusedWithTheirReason() {
        let otherKey = SymmetricKey(data: Data("ffffffffffffffffffffffffffffffff".utf8))
        let forged = HS256JWT.sign(claims: ["sub": "alice"], key: otherKey)
        let expired = HS256JWT.sign(claims: ["sub": "alice", "exp": Date().timeIntervalSince1970 - 1], key: key)
        let noSubject = HS256JWT.sign(claims: ["name": "alice"], key: key)
        let unsignedHeader = HS256JWT.base64URLEncode(Data(#"{"alg":"none"}"#.utf8))
        let payload = HS256JWT.base64URLEncode(Data(#"{"sub":"alice"}"#.utf8))
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
            #expect(throws: expected) { try authenticator.userID(token: token, requestedUser: nil) }
        }
    }

    @Test func withAuthenticationOffTheUserIsWhoTheQuerySays() throws {
        let off = Authenticator(mode: .off)
        #expect(try off.userID(token: nil, requestedUser: "bob") == "bob")
        #expect(try off.userID(token: nil, requestedUser: nil) == "local")
    }

    @Test func theTokenComesFromTheHeaderOrTheQuery() {
        #expect(Authenticator.token(authorization: "Bearer abc", query: "token=zzz") == "abc")
        #expect(Authenticator.token(authorization: "bearer abc", query: nil) == "abc")
        #expect(Authenticator.token(authorization: nil, query: "user=x&token=q%2Bq") == "q+q")
        #expect(Authenticator.token(authorization: "Basic Zm9v", query: nil) == nil)
    }
}
