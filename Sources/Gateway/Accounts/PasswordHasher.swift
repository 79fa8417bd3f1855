import Crypto
import CryptoExtras
import Foundation
import NIOPosix

/// Hashes and checks account passwords with scrypt (RFC 7914), stored in the PHC
/// string form `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (base64 without padding), so
/// that a later change of cost still reads the hashes made before it.
///
/// scrypt is meant to be slow (~30 MiB and tens of milliseconds at the default cost):
/// it runs on NIO's blocking thread pool, never on an event loop, and the thread
/// pool's size bounds how many run at once.
struct PasswordHasher: Sendable {
    /// The scrypt cost: N = 2^logRounds, block size r, parallelism p.
    struct Cost: Sendable, Equatable {
        var logRounds: Int
        var blockSize: Int
        var parallelism: Int

        /// OWASP's minimum for scrypt: N = 2^15, r = 8, p = 1 (32 MiB).
        static let standard = Cost(logRounds: 15, blockSize: 8, parallelism: 1)

        /// Costs a stored hash may name: a row cannot make a login take minutes or gigabytes.
        var isAcceptable: Bool {
            (10...20).contains(logRounds) && (1...16).contains(blockSize) && (1...4).contains(parallelism)
        }
    }

    /// What a password must be.
    static let minimumLength = 8
    static let maximumBytes = 1024

    var cost: Cost = .standard
    private static let saltBytes = 16
    private static let hashBytes = 32

    /// A new hash of `password` with a random salt.
    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        var salt = [UInt8](repeating: 0, count: Self.saltBytes)
        var generator = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = generator.next() }
        let derived = try await NIOThreadPool.singleton.runIfActive { [salt] in
            try Self.derive(password, salt: salt, cost: cost, count: Self.hashBytes)
        }
        return "$scrypt$ln=\(cost.logRounds),r=\(cost.blockSize),p=\(cost.parallelism)$\(Self.encode(salt))$\(Self.encode(derived))"
    }

    /// Whether `password` is the one `stored` was made from. A stored value that is
    /// not a hash of this form (or names an unacceptable cost) matches nothing.
    func verify(_ password: String, against stored: String) async -> Bool {
        guard let parsed = Self.parse(stored) else { return false }
        let derived = try? await NIOThreadPool.singleton.runIfActive {
            try Self.derive(password, salt: parsed.salt, cost: parsed.cost, count: parsed.hash.count)
        }
        guard let derived else { return false }
        // Constant time: how much of a guess matched must not show in the time taken.
        return derived.count == parsed.hash.count && zip(derived, parsed.hash).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Runs scrypt over `password` for as long as a real check would, so that a login
    /// for a user id without an account takes the time of one with a wrong password.
    func spendCheckTime(_ password: String) async {
        _ = try? await hash(password)
    }

    private static func derive(_ password: String, salt: [UInt8], cost: Cost, count: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8),
            salt: salt,
            outputByteCount: count,
            rounds: 1 << cost.logRounds,
            blockSize: cost.blockSize,
            parallelism: cost.parallelism
        )
        return key.withUnsafeBytes { Array($0) }
    }

    /// `$scrypt$ln=…,r=…,p=…$salt$hash` → its parts.
    static func parse(_ stored: String) -> (cost: Cost, salt: [UInt8], hash: [UInt8])? {
        let fields = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0].isEmpty, fields[1] == "scrypt" else { return nil }
        var values: [String: Int] = [:]
        for pair in fields[2].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Int(parts[1]) else { return nil }
            values[String(parts[0])] = value
        }
        guard let logRounds = values["ln"], let blockSize = values["r"], let parallelism = values["p"], values.count == 3 else { return nil }
        let cost = Cost(logRounds: logRounds, blockSize: blockSize, parallelism: parallelism)
        guard cost.isAcceptable, let salt = decode(fields[3]), let hash = decode(fields[4]), salt.count >= 8, (16...64).contains(hash.count) else {
            return nil
        }
        return (cost, salt, hash)
    }

    private static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    private static func decode(_ text: Substring) -> [UInt8]? {
        let padded = String(text) + String(repeating: "=", count: (4 - text.count % 4) % 4)
        return Data(base64Encoded: padded).map { Array($0) }
    }
}
