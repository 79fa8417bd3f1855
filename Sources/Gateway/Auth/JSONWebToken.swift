import Foundation

/// A compact JSON Web Token (RFC 7519), split and decoded but not yet trusted: its
/// signature is checked by whoever holds the key, then `subject(checking:now:)` reads
/// the claims.
struct JSONWebToken: Sendable {
    /// The `alg` of the header.
    let algorithm: String
    /// The `kid` of the header: which of the issuer's keys signed it.
    let keyID: String?
    /// `header.payload`, the bytes the signature covers.
    let signingInput: Data
    let signature: Data
    private let payload: Data

    init(parsing token: String) throws(AuthError) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .invalidToken("not a JWT (expected three dot-separated parts)") }
        guard let headerData = Base64URL.decode(parts[0]),
            let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any],
            let algorithm = header["alg"] as? String
        else { throw .invalidToken("unreadable header") }
        guard let signature = Base64URL.decode(parts[2]) else { throw .invalidToken("unreadable signature") }
        guard let payload = Base64URL.decode(parts[1]) else { throw .invalidToken("unreadable claims") }
        if let keyID = header["kid"], !(keyID is String) { throw .invalidToken("kid must be a string") }
        self.algorithm = algorithm
        self.keyID = header["kid"] as? String
        self.signingInput = Data("\(parts[0]).\(parts[1])".utf8)
        self.signature = signature
        self.payload = payload
    }

    /// The `sub` claim, once the time, issuer and audience claims pass `rules`. Call it
    /// only after the signature has been verified.
    func subject(checking rules: ClaimRules, now: Date) throws(AuthError) -> String {
        guard let claims = try? JSONSerialization.jsonObject(with: payload) as? [String: Any] else {
            throw .invalidToken("unreadable claims")
        }
        // A time claim that is there must be a number (NumericDate): a string would
        // otherwise switch the check off, and `null` would read as "no expiry".
        guard claims["exp"].map({ !($0 is NSNull) }) ?? true, claims["nbf"].map({ !($0 is NSNull) }) ?? true,
            let times = try? JSONDecoder().decode(TimeClaims.self, from: payload)
        else {
            throw .invalidToken("exp and nbf must be numbers")
        }
        if let expiry = times.exp, now.timeIntervalSince1970 >= expiry { throw .expiredToken }
        if let notBefore = times.nbf, now.timeIntervalSince1970 < notBefore { throw .invalidToken("not valid yet (nbf)") }
        if let issuer = rules.issuer, claims["iss"] as? String != issuer { throw .invalidToken("iss is not \(issuer)") }
        if let audience = rules.audience, !Self.audiences(claims["aud"]).contains(audience) {
            throw .invalidToken("aud does not name \(audience)")
        }
        guard let subject = claims["sub"] as? String, !subject.isEmpty else { throw .invalidToken("no sub claim") }
        guard UserID.isValid(subject) else { throw .invalidToken("sub must be \(UserID.rule)") }
        return subject
    }

    /// The time claims, decoded strictly: a JSON number or absent (a string or a
    /// boolean fails the decoding).
    private struct TimeClaims: Decodable {
        var exp: Double?
        var nbf: Double?
    }

    /// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
    private static func audiences(_ value: Any?) -> [String] {
        if let one = value as? String { return [one] }
        return (value as? [Any])?.compactMap { $0 as? String } ?? []
    }
}

/// What a token's claims must say besides a subject: the issuer and audience of
/// `JWT_ISSUER` / `JWT_AUDIENCE`, when set.
struct ClaimRules: Sendable, Equatable {
    var issuer: String? = nil
    var audience: String? = nil
}

/// Base64url without padding (RFC 7515 §2).
enum Base64URL {
    static func decode(_ text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        return Data(base64Encoded: base64)
    }

    static func encode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
