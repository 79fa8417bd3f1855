import Crypto
import Foundation

/// An HS256 JWT with a subject and an expiry: what the gateway accepts with JWT_SECRET.
enum HS256Token {
    static func sign(subject: String, secret: String, lifetime: Int, now: Date = Date()) -> String {
        let header = #"{"alg":"HS256","typ":"JWT"}"#
        let expiry = Int(now.timeIntervalSince1970) + lifetime
        let claims = #"{"sub":"\#(subject)","exp":\#(expiry)}"#
        let signingInput = base64URL(Data(header.utf8)) + "." + base64URL(Data(claims.utf8))
        let key = SymmetricKey(data: Data(secret.utf8))
        let signature = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: key)
        return signingInput + "." + base64URL(Data(signature))
    }

    private static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
