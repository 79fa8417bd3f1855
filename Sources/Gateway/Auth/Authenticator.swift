import Crypto
import Foundation

/// Why a handshake was refused.
enum AuthError: Error, Equatable, Sendable {
    case missingToken
    case invalidToken(String)
    case expiredToken

    var code: String {
        switch self {
        case .missingToken: "missing_token"
        case .invalidToken: "invalid_token"
        case .expiredToken: "token_expired"
        }
    }

    var message: String {
        switch self {
        case .missingToken: "send a bearer token in the Authorization header or as ?token="
        case .invalidToken(let why): "the token is not valid: \(why)"
        case .expiredToken: "the token has expired"
        }
    }
}

/// Turns the bearer token of a handshake into a user id: an HS256 JWT whose `sub`
/// is the user id, or a static API key mapped to a user id. With authentication
/// off, every socket is the user named by `?user=` (default `local`).
struct Authenticator: Sendable {
    enum Mode: Sendable {
        case off
        case on(jwt: JWTRules?, apiKeys: [String: String])
    }

    /// How HS256 tokens are checked: the key, and the issuer and audience they must name
    /// when `JWT_ISSUER` / `JWT_AUDIENCE` are set.
    struct JWTRules: Sendable {
        var key: SymmetricKey
        var issuer: String? = nil
        var audience: String? = nil
    }

    let mode: Mode

    func userID(token: String?, requestedUser: String?, now: Date = Date()) throws(AuthError) -> String {
        switch mode {
        case .off:
            return requestedUser.flatMap { $0.isEmpty ? nil : $0 } ?? "local"
        case .on(let rules, let apiKeys):
            guard let token, !token.isEmpty else { throw .missingToken }
            if let user = apiKeys[token] { return user }
            guard let rules else { throw .invalidToken("unknown API key") }
            return try HS256JWT.subject(of: token, rules: rules, now: now)
        }
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

/// Verifies HS256 JSON Web Tokens (RFC 7519) and reads their subject.
enum HS256JWT {
    static func subject(of token: String, key: SymmetricKey, now: Date) throws(AuthError) -> String {
        try subject(of: token, rules: Authenticator.JWTRules(key: key), now: now)
    }

    static func subject(of token: String, rules: Authenticator.JWTRules, now: Date) throws(AuthError) -> String {
        let key = rules.key
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .invalidToken("not a JWT (expected three dot-separated parts)") }
        guard let headerData = base64URLDecode(parts[0]),
              let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any]
        else { throw .invalidToken("unreadable header") }
        guard header["alg"] as? String == "HS256" else { throw .invalidToken("only alg HS256 is accepted") }
        guard let signature = base64URLDecode(parts[2]) else { throw .invalidToken("unreadable signature") }
        let signed = Data("\(parts[0]).\(parts[1])".utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: key) else {
            throw .invalidToken("bad signature")
        }
        guard let payloadData = base64URLDecode(parts[1]),
              let claims = try? JSONSerialization.jsonObject(with: payloadData) as? [String: Any]
        else { throw .invalidToken("unreadable claims") }
        // A time claim that is there must be a number (NumericDate): a string would
        // otherwise switch the check off.
        // `null` is not a NumericDate either (it would decode as "no expiry").
        guard claims["exp"].map({ !($0 is NSNull) }) ?? true, claims["nbf"].map({ !($0 is NSNull) }) ?? true,
              let times = try? JSONDecoder().decode(TimeClaims.self, from: payloadData)
        else {
            throw .invalidToken("exp and nbf must be numbers")
        }
        if let expiry = times.exp, now.timeIntervalSince1970 >= expiry { throw .expiredToken }
        if let notBefore = times.nbf, now.timeIntervalSince1970 < notBefore { throw .invalidToken("not valid yet (nbf)") }
        if let issuer = rules.issuer, claims["iss"] as? String != issuer { throw .invalidToken("iss is not \(issuer)") }
        if let audience = rules.audience, !Self.audiences(claims["aud"]).contains(audience) { throw .invalidToken("aud does not name \(audience)") }
        guard let subject = claims["sub"] as? String, !subject.isEmpty else { throw .invalidToken("no sub claim") }
        // The subject becomes a user id in the database and in logs.
        guard subject.utf8.count <= 256, !subject.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidToken("sub must be at most 256 bytes without control characters")
        }
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

    /// Signs claims; used by tests and the token tool.
    static func sign(claims: [String: Any], key: SymmetricKey) -> String {
        let header = base64URLEncode(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = base64URLEncode((try? JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])) ?? Data())
        let signature = HMAC<SHA256>.authenticationCode(for: Data("\(header).\(payload)".utf8), using: key)
        return "\(header).\(payload).\(base64URLEncode(Data(signature)))"
    }

    static func base64URLDecode(_ text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        return Data(base64Encoded: base64)
    }

    static func base64URLEncode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
