import Crypto
import Foundation

/// Issues the HS256 JWTs a logged-in account uses: the same tokens the gateway
/// accepts from `JWT_SECRET` (`sub` the user id, `exp`, and `iss`/`aud` when
/// `JWT_ISSUER`/`JWT_AUDIENCE` are set), so that an account's token works on every
/// gateway, on the socket and on REST alike.
struct AccountTokenIssuer: Sendable {
    let key: SymmetricKey
    let claims: ClaimRules
    let lifetime: Duration

    struct Issued: Sendable, Equatable {
        var token: String
        var userID: String
        var expiresAt: Date
    }

    func issue(for userID: String, now: Date = Date()) -> Issued {
        let issuedAt = Int(now.timeIntervalSince1970)
        let expiresAt = issuedAt + Int(lifetime.wholeMilliseconds / 1000)
        var payload: [String: Any] = ["sub": userID, "iat": issuedAt, "exp": expiresAt]
        if let issuer = claims.issuer { payload["iss"] = issuer }
        if let audience = claims.audience { payload["aud"] = audience }
        return Issued(token: HS256JWT.sign(claims: payload, key: key), userID: userID, expiresAt: Date(timeIntervalSince1970: Double(expiresAt)))
    }
}
