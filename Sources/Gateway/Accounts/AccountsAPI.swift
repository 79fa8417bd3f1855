import Foundation
import Hummingbird
import Shared

/// `POST /api/accounts` (register) and `POST /api/accounts/login`: a user name and a
/// password in, the gateway's token out. With `ACCOUNTS=off` both answer
/// `404 accounts_disabled`, so that a page or a client learns why.
struct AccountsAPI: Sendable {
    /// nil when `ACCOUNTS=off`.
    let accounts: Accounts?
    let reader: RESTRequestReader

    struct Credentials: RequestBody {
        static let fields = ["user_id", "password"]
        var user_id: String
        var password: String
    }

    struct Issued: Encodable {
        var token: String
        var user_id: String
        var expires_at: Date

        init(_ issued: Accounts.Issued) {
            token = issued.token
            user_id = issued.userID
            expires_at = issued.expiresAt
        }
    }

    func register(on router: Router<GatewayRequestContext>) {
        router.post("/api/accounts") { request, context in
            let (accounts, credentials) = try await read(request)
            let issued = try await GatewayHTTPError.refusing { () async throws(ClientError) in
                try await accounts.register(name: credentials.user_id, password: credentials.password, from: context.clientAddress)
            }
            return Response.json(Issued(issued), status: .created)
        }
        router.post("/api/accounts/login") { request, context in
            let (accounts, credentials) = try await read(request)
            let issued = try await GatewayHTTPError.refusing { () async throws(ClientError) in
                try await accounts.logIn(name: credentials.user_id, password: credentials.password, from: context.clientAddress)
            }
            return Response.json(Issued(issued))
        }
    }

    private func read(_ request: Request) async throws(GatewayHTTPError) -> (Accounts, Credentials) {
        guard let accounts else { throw GatewayHTTPError(ClientError(code: .accountsDisabled)) }
        return (accounts, try await reader.body(Credentials.self, of: request))
    }
}
