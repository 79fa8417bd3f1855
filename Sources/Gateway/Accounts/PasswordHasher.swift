import Crypto
import CryptoExtras
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Hashes and checks account passwords with scrypt (RFC 7914), stored in the PHC
/// string form `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (base64 without padding), so
/// that a later change of cost still reads the hashes made before it.
///
/// scrypt is meant to be slow (32 MiB and a good fraction of a second at the default
/// cost): it runs on NIO's blocking thread pool, never on an event loop. The pool's
/// size bounds how many run at once; `maxAdmitted` bounds how many may wait for it,
/// beyond which a sign-in is refused at once (`busy`) rather than queued without end.
struct PasswordHasher: Sendable {
    enum Failure: Error, Equatable {
        /// Too many hashes running and waiting.
        case busy
        /// scrypt itself failed (the thread pool stopped, a parameter refused).
        case failed(String)
    }

    /// The scrypt cost: N = 2^logRounds, block size r, parallelism p.
    struct Cost: Sendable, Equatable {
        var logRounds: Int
        var blockSize: Int
        var parallelism: Int

        /// OWASP's minimum for scrypt: N = 2^15, r = 8, p = 1 (32 MiB).
        static let standard = Cost(logRounds: 15, blockSize: 8, parallelism: 1)

        /// The memory one hash takes: 128 · r · N bytes.
        var memoryBytes: Int { 128 * blockSize << logRounds }

        /// Costs a stored hash may name: a row cannot make a login take more than 64 MiB
        /// or much longer than the standard cost.
        var isAcceptable: Bool {
            (10...16).contains(logRounds) && (1...16).contains(blockSize) && (1...2).contains(parallelism) && memoryBytes <= 64 << 20
        }
    }

    /// What a password must be.
    static let minimumLength = 8
    static let maximumBytes = 1024

    var cost: Cost = .standard
    /// Hashes running or waiting for a thread at once (default: two per core).
    var maxAdmitted = 2 * System.coreCount
    private let admitted = Admitted()
    private static let saltBytes = 16
    private static let hashBytes = 32

    /// A new hash of `password` with a random salt.
    func hash(_ password: String) async throws(Failure) -> String {
        let cost = self.cost
        var salt = [UInt8](repeating: 0, count: Self.saltBytes)
        var generator = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = generator.next() }
        let derived = try await derive(password, salt: salt, cost: cost, count: Self.hashBytes)
        return "$scrypt$ln=\(cost.logRounds),r=\(cost.blockSize),p=\(cost.parallelism)$\(Self.encode(salt))$\(Self.encode(derived))"
    }

    /// Whether `password` is the one `stored` was made from. A stored value that is
    /// not a hash of this form (or names an unacceptable cost) matches nothing.
    func verify(_ password: String, against stored: String) async throws(Failure) -> Bool {
        guard let parsed = Self.parse(stored) else { return false }
        let derived = try await derive(password, salt: parsed.salt, cost: parsed.cost, count: parsed.hash.count)
        // Constant time: how much of a guess matched must not show in the time taken.
        return derived.count == parsed.hash.count && zip(derived, parsed.hash).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Runs scrypt over `password` for as long as a real check would, so that a login
    /// for a name without an account takes the time of one with a wrong password.
    func spendCheckTime(_ password: String) async throws(Failure) {
        _ = try await hash(password)
    }

    /// scrypt on the thread pool, once admitted.
    private func derive(_ password: String, salt: [UInt8], cost: Cost, count: Int) async throws(Failure) -> [UInt8] {
        guard admitted.enter(limit: maxAdmitted) else { throw .busy }
        defer { admitted.leave() }
        do {
            return try await NIOThreadPool.singleton.runIfActive {
                try Self.derive(password, salt: salt, cost: cost, count: count)
            }
        } catch {
            throw .failed(String(describing: error))
        }
    }

    /// How many scrypt runs this hasher has started (each costs the same, whatever the
    /// outcome: the number a login's timing cannot tell apart).
    var runs: Int { admitted.runs }

    /// How many hashes are running or waiting, and how many were started.
    private final class Admitted: Sendable {
        private let counts = Mutex((current: 0, started: 0))

        func enter(limit: Int) -> Bool {
            counts.withLock { counts in
                guard counts.current < limit else { return false }
                counts.current += 1
                counts.started += 1
                return true
            }
        }

        func leave() { counts.withLock { $0.current -= 1 } }

        var runs: Int { counts.withLock { $0.started } }
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
