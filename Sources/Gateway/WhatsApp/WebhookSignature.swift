import Crypto
import Foundation

/// `X-Hub-Signature-256: sha256=<hex>`: the HMAC-SHA256 of the webhook's raw body with
/// the app secret. Compared in constant time; a header of any other shape is invalid.
enum WebhookSignature {
    static let header = "X-Hub-Signature-256"

    static func isValid(_ header: String?, body: [UInt8], secret: SymmetricKey) -> Bool {
        guard let header, header.hasPrefix("sha256="), let mac = bytes(hex: header.dropFirst("sha256=".count)), mac.count == 32 else {
            return false
        }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: secret)
    }

    /// What the Cloud API sends for `body` (the tests' webhook sender signs with it).
    static func sign(_ body: [UInt8], secret: SymmetricKey) -> String {
        "sha256=" + HMAC<SHA256>.authenticationCode(for: body, using: secret).map { String(format: "%02x", $0) }.joined()
    }

    private static func bytes(hex: Substring) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
