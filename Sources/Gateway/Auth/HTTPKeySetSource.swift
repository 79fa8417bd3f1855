import AsyncHTTPClient
import Foundation
import NIOCore
import ParleySupport
import Shared

/// Fetches the key set from the identity provider's JWKS URL (`JWT_JWKS_URL`), e.g.
/// Keycloak's `…/protocol/openid-connect/certs` or Auth0's `/.well-known/jwks.json`.
struct HTTPKeySetSource: KeySetSource {
    let client: HTTPClient
    let url: String
    var timeout: Duration = .seconds(5)

    func fetchKeySet() async throws(KeySetError) -> JSONWebKeySet {
        var get = HTTPClientRequest(url: url)
        get.headers.add(name: "Accept", value: "application/json")
        let (client, url, timeout, request) = (self.client, self.url, self.timeout, get)
        let bytes: [UInt8]
        do {
            // The limit covers the body too: AsyncHTTPClient's own ends with the head,
            // and a provider (or a proxy) that stalls the body would otherwise hold the
            // fetch — and every handshake waiting on it — for good.
            bytes = try await withTimeout(timeout) {
                let response = try await client.execute(request, timeout: .init(timeout))
                guard response.status == .ok else {
                    throw KeySetError.fetchFailed("GET \(url) answered HTTP \(response.status.code)")
                }
                return Array(buffer: try await response.body.collect(upTo: JSONWebKeySet.maxBytes))
            }
        } catch let error as KeySetError {
            throw error
        } catch is NIOTooManyBytesError {
            throw .unreadable("larger than \(JSONWebKeySet.maxBytes) bytes")
        } catch is TimeoutError {
            throw .fetchFailed("GET \(url): no whole answer within \(timeout.wholeMilliseconds) ms")
        } catch {
            throw .fetchFailed("GET \(url) failed: \(error)")
        }
        return try JSONWebKeySet(parsing: bytes)
    }
}
