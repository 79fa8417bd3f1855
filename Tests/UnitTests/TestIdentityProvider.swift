import Crypto
import CryptoExtras
import Foundation

@testable import Gateway

/// An identity provider for tests: RSA and P-256 signing keys, its JWKS document, and
/// tokens signed the way Keycloak or Auth0 sign them.
struct TestIdentityProvider: Sendable {
    enum SigningKey: Sendable {
        case rsa(_RSA.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
    }

    struct Key: Sendable {
        var id: String
        var signing: SigningKey
    }

    static func rsaKey(_ id: String) throws -> Key {
        Key(id: id, signing: .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048)))
    }

    static func p256Key(_ id: String) -> Key {
        Key(id: id, signing: .p256(P256.Signing.PrivateKey()))
    }

    /// The JWKS document publishing these keys.
    static func document(_ keys: [Key], extra: [[String: Any]] = []) throws -> [UInt8] {
        var entries = extra
        for key in keys {
            switch key.signing {
            case .rsa(let privateKey):
                let primitives = try privateKey.publicKey.getKeyPrimitives()
                entries.append([
                    "kty": "RSA", "kid": key.id, "use": "sig", "alg": "RS256", "n": Base64URL.encode(primitives.modulus),
                    "e": Base64URL.encode(primitives.publicExponent),
                ])
            case .p256(let privateKey):
                let raw = privateKey.publicKey.rawRepresentation
                entries.append([
                    "kty": "EC", "kid": key.id, "crv": "P-256", "x": Base64URL.encode(raw.prefix(32)), "y": Base64URL.encode(raw.suffix(32)),
                ])
            }
        }
        return Array(try JSONSerialization.data(withJSONObject: ["keys": entries]))
    }

    static func keySet(_ keys: [Key]) throws -> JSONWebKeySet {
        try JSONWebKeySet(parsing: document(keys))
    }

    /// A token signed by `key`; `kid` overrides (or with `.some(nil)` drops) the key id.
    static func token(_ claims: [String: Any], key: Key, kid: String?? = .none) throws -> String {
        let algorithm =
            switch key.signing {
            case .rsa: "RS256"
            case .p256: "ES256"
            }
        var header: [String: Any] = ["alg": algorithm, "typ": "JWT"]
        if let id = kid ?? key.id { header["kid"] = id }
        let input =
            Base64URL.encode(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) + "."
            + Base64URL.encode(try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys]))
        let digest = SHA256.hash(data: Data(input.utf8))
        let signature: Data =
            switch key.signing {
            case .rsa(let privateKey): try privateKey.signature(for: digest, padding: .insecurePKCS1v1_5).rawRepresentation
            case .p256(let privateKey): try privateKey.signature(for: digest).rawRepresentation
            }
        return input + "." + Base64URL.encode(signature)
    }
}

/// A key set source whose document the test changes, counting its fetches.
final class ChangingKeySetSource: KeySetSource, @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<JSONWebKeySet, KeySetError>
    private var fetchCount = 0
    /// How long a fetch takes.
    var delay: Duration = .zero

    init(_ keySet: JSONWebKeySet) {
        result = .success(keySet)
    }

    var fetches: Int { lock.withLock { fetchCount } }

    func serve(_ keySet: JSONWebKeySet) { lock.withLock { result = .success(keySet) } }
    func fail(_ why: String) { lock.withLock { result = .failure(.fetchFailed(why)) } }

    func fetchKeySet() async throws(KeySetError) -> JSONWebKeySet {
        let answer = lock.withLock {
            fetchCount += 1
            return result
        }
        if delay > .zero { try? await Task.sleep(for: delay) }
        return try answer.get()
    }
}

/// A clock a test moves by hand.
final class ManualInstant: @unchecked Sendable {
    private let lock = NSLock()
    private var instant = ContinuousClock.now

    var now: ContinuousClock.Instant { lock.withLock { instant } }
    func advance(_ duration: Duration) { lock.withLock { instant += duration } }
}
