import Crypto
import CryptoExtras
import Foundation

/// One public signing key of an identity provider's key set (RFC 7517), for the one
/// algorithm it verifies: RS256 (an RSA key of at least 2048 bits) or ES256 (P-256).
struct JSONWebKey: Sendable {
    enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
    }

    let id: String?
    let material: Material

    var algorithm: String {
        switch material {
        case .rsa: "RS256"
        case .p256: "ES256"
        }
    }

    func isValidSignature(of token: JSONWebToken) -> Bool {
        switch material {
        case .rsa(let key):
            return key.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: token.signature),
                for: SHA256.hash(data: token.signingInput),
                padding: .insecurePKCS1v1_5
            )
        case .p256(let key):
            // JWS carries r‖s, 32 bytes each (RFC 7518 §3.4), not DER.
            guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: token.signature) else { return false }
            return key.isValidSignature(signature, for: SHA256.hash(data: token.signingInput))
        }
    }
}

/// An identity provider's JWKS document (`{"keys":[…]}`), reduced to the keys Parley
/// can verify with. Keys for encryption, of other types or algorithms, or too weak are
/// left out; a document with none left is refused.
struct JSONWebKeySet: Sendable {
    static let maxBytes = 1 << 20
    static let maxKeys = 100

    let keys: [JSONWebKey]

    init(keys: [JSONWebKey]) {
        self.keys = keys
    }

    init(parsing bytes: [UInt8]) throws(KeySetError) {
        guard bytes.count <= Self.maxBytes else { throw .unreadable("larger than \(Self.maxBytes) bytes") }
        guard let document = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let entries = document["keys"] as? [Any]
        else { throw .unreadable("not a JWKS document (a JSON object with \"keys\")") }
        keys = entries.prefix(Self.maxKeys).compactMap { ($0 as? [String: Any]).flatMap(Self.key(from:)) }
        guard !keys.isEmpty else { throw .unreadable("it has no RS256 or ES256 signing key") }
    }

    /// The key that may have signed a token with this `kid` and `alg`. A token without
    /// a `kid` may use the set's only key of its algorithm.
    func key(id: String?, algorithm: String) -> JSONWebKey? {
        let candidates = keys.filter { $0.algorithm == algorithm }
        guard let id else { return candidates.count == 1 ? candidates[0] : nil }
        return candidates.first { $0.id == id }
    }

    private static func key(from entry: [String: Any]) -> JSONWebKey? {
        if let use = entry["use"] as? String, use != "sig" { return nil }
        let id = entry["kid"] as? String
        switch (entry["kty"] as? String, entry["alg"] as? String) {
        case ("RSA", nil), ("RSA", "RS256"):
            guard let n = string(entry["n"]), let e = string(entry["e"]),
                let key = try? _RSA.Signing.PublicKey(n: n, e: e)
            else { return nil }
            return JSONWebKey(id: id, material: .rsa(key))
        case ("EC", nil), ("EC", "ES256"):
            guard entry["crv"] as? String == "P-256", let x = string(entry["x"]), let y = string(entry["y"]),
                x.count == 32, y.count == 32,
                let key = try? P256.Signing.PublicKey(rawRepresentation: x + y)
            else { return nil }
            return JSONWebKey(id: id, material: .p256(key))
        default:
            return nil
        }
    }

    private static func string(_ value: Any?) -> Data? {
        (value as? String).flatMap { Base64URL.decode(Substring($0)) }
    }
}

/// Why a key set could not be used.
enum KeySetError: Error, Equatable, CustomStringConvertible {
    case unreadable(String)
    case fetchFailed(String)

    var description: String {
        switch self {
        case .unreadable(let why): "the key set is unreadable: \(why)"
        case .fetchFailed(let why): why
        }
    }
}
