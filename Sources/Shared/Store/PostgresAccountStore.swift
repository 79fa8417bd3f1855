import Foundation
import Logging
import PostgresNIO

/// `AccountStore` on PostgreSQL (the `accounts` table, migration 7).
public struct PostgresAccountStore: AccountStore {
    private let client: PostgresClient
    private let logger: Logger
    private let timeout: Duration

    public init(client: PostgresClient, logger: Logger, timeout: Duration = .seconds(5)) {
        self.client = client
        self.logger = logger
        self.timeout = timeout
    }

    public func create(userID: String, passwordHash: String) async throws(StoreError) -> AccountCreation {
        let (client, logger) = (self.client, self.logger)
        return try await storeCall(timeout: timeout) {
            // One statement: two registrations of one name cannot both win, and a name
            // whose sessions another sign-in made is not taken over.
            let rows = try await client.query(
                """
                INSERT INTO accounts (user_id, password_hash)
                SELECT \(userID), \(passwordHash) WHERE NOT EXISTS (SELECT 1 FROM sessions WHERE user_id = \(userID))
                ON CONFLICT (user_id) DO NOTHING
                RETURNING user_id
                """,
                logger: logger
            )
            for try await _ in rows.decode(String.self) { return .created }
            return .taken
        }
    }

    public func passwordHash(userID: String) async throws(StoreError) -> String? {
        let (client, logger) = (self.client, self.logger)
        return try await storeCall(timeout: timeout) {
            let rows = try await client.query("SELECT password_hash FROM accounts WHERE user_id = \(userID)", logger: logger)
            for try await hash in rows.decode(String.self) { return hash }
            return nil
        }
    }

    public func recordLogin(userID: String) async throws(StoreError) {
        let (client, logger) = (self.client, self.logger)
        try await storeCall(timeout: timeout) {
            try await client.query("UPDATE accounts SET last_login_at = now() WHERE user_id = \(userID)", logger: logger)
        }
    }
}
