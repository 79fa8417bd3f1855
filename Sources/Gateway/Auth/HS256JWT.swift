import Crypto
import Foundation

/// HS256 tokens (RFC 7518 §3.2): signed with the shared `JWT_SECRET`.
enum HS256JWT {
    static func isValid(_ token: JSONWebToken, key: SymmetricKey) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(token.signature, authenticating: token.signingInput, using: key)
    }

    /// Signs claims; used by tests and the token tool.
    static func sign(claims: [String: Any], key: SymmetricKey) -> String {
        let header = Base64URL.encode(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode((try? JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])) ?? Data())
        let signature = HMAC<SHA256>.authenticationCode(for: Data("\(header).\(payload)".utf8), using: key)
        return "\(header).\(payload).\(Base64URL.encode(Data(signature)))"
    }
}
