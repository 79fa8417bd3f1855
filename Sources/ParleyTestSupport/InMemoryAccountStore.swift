import Shared
import Synchronization

/// `AccountStore` in memory, for unit tests. With `sessions`, a user id that owns a
/// session there is taken, as on PostgreSQL.
public final class InMemoryAccountStore: AccountStore {
    private let hashes = Mutex<[String: String]>([:])
    private let logins = Mutex<[String: Int]>([:])
    private let sessions: InMemoryConversationStore?

    public init(sessions: InMemoryConversationStore? = nil) {
        self.sessions = sessions
    }

    public func create(userID: String, passwordHash: String) async throws(StoreError) -> AccountCreation {
        let ownsSessions = try sessions?.snapshot().sessions.values.contains { $0.userID == userID } ?? false
        guard !ownsSessions else { return .taken }
        return hashes.withLock { hashes in
            guard hashes[userID] == nil else { return .taken }
            hashes[userID] = passwordHash
            return .created
        }
    }

    public func passwordHash(userID: String) async throws(StoreError) -> String? {
        hashes.withLock { $0[userID] }
    }

    public func recordLogin(userID: String) async throws(StoreError) {
        logins.withLock { $0[userID, default: 0] += 1 }
    }

    /// How many logins `userID` has had.
    public func loginCount(userID: String) -> Int {
        logins.withLock { $0[userID] ?? 0 }
    }
}
