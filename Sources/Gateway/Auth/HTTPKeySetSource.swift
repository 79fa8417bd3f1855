import AsyncHTTPClient
import Foundation
import NIOCore

/// Fetches the key set from the identity provider's JWKS URL (`JWT_JWKS_URL`), e.g.
/// Keycloak's `…/protocol/openid-connect/certs` or Auth0's `/.well-known/jwks.json`.
struct HTTPKeySetSource: KeySetSource {
    let client: HTTPClient
    let url: String
    var timeout: Duration = .seconds(5)

    func fetchKeySet() async throws(KeySetError) -> JSONWebKeySet {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let bytes: [UInt8]
        do {
            let response = try await client.execute(request, timeout: .init(timeout))
            guard response.status == .ok else {
                throw KeySetError.fetchFailed("GET \(url) answered HTTP \(response.status.code)")
            }
            bytes = Array(buffer: try await response.body.collect(upTo: JSONWebKeySet.maxBytes))
        } catch let error as KeySetError {
            throw error
        } catch is NIOTooManyBytesError {
            throw .unreadable("larger than \(JSONWebKeySet.maxBytes) bytes")
        } catch {
            throw .fetchFailed("GET \(url) failed: \(error)")
        }
        return try JSONWebKeySet(parsing: bytes)
    }
}
