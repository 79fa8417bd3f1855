import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ParleySupport

/// `WhatsAppGraph` over HTTP, with the access token as a bearer token. One request
/// per call: the relay retries (its schedule survives restarts).
struct HTTPWhatsAppGraph: WhatsAppGraph {
    let client: HTTPClient
    let baseURL: String
    let accessToken: String
    let timeout: Duration

    func send(text: String, to recipient: String, from phoneNumberID: String) async throws(GraphError) {
        let body: [String: Any] = [
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": recipient,
            "type": "text",
            "text": ["preview_url": false, "body": text],
        ]
        var request = HTTPClientRequest(url: "\(baseURL)/\(phoneNumberID)/messages")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: body)) ?? Data()))
        _ = try await HTTPExchange.run(authorized(request), client: client, timeout: timeout, limit: 1 << 20)
    }

    func media(id: String) async throws(GraphError) -> WhatsAppMedia {
        let body = try await HTTPExchange.run(
            authorized(HTTPClientRequest(url: "\(baseURL)/\(id)")),
            client: client,
            timeout: timeout,
            limit: 1 << 20
        )
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any], let url = object["url"] as? String,
            let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? "")
        else {
            throw .rejected(status: 200, body: "the media's description has no http(s) url")
        }
        return WhatsAppMedia(
            url: url,
            mimeType: object["mime_type"] as? String ?? "audio/ogg",
            size: (object["file_size"] as? Int) ?? (object["file_size"] as? String).flatMap { Int($0) }
        )
    }

    func download(_ media: WhatsAppMedia, limit: Int) async throws(GraphError) -> [UInt8] {
        if let size = media.size, size > limit { throw .rejected(status: 413, body: "the file has \(size) bytes; at most \(limit) are taken") }
        return try await HTTPExchange.run(authorized(HTTPClientRequest(url: media.url)), client: client, timeout: timeout, limit: limit)
    }

    private func authorized(_ request: HTTPClientRequest) -> HTTPClientRequest {
        var request = request
        request.headers.add(name: "Authorization", value: "Bearer \(accessToken)")
        return request
    }
}

/// One HTTP exchange with a time limit over the whole of it, body included, and a
/// limit on the body's size; the failure as the `GraphError` it amounts to.
enum HTTPExchange {
    static func run(_ request: HTTPClientRequest, client: HTTPClient, timeout: Duration, limit: Int) async throws(GraphError) -> [UInt8] {
        let outcome: Result<(status: Int, body: ByteBuffer), any Error>
        do {
            // AsyncHTTPClient's own deadline ends with the response's head: the whole
            // exchange, a body that stalls included, is limited here.
            outcome = .success(
                try await withTimeout(timeout) {
                    let seconds = Int64(timeout.wholeMilliseconds / 1000)
                    let response = try await client.execute(request, timeout: .seconds(max(seconds, 1)))
                    return (Int(response.status.code), try await response.body.collect(upTo: limit))
                }
            )
        } catch let error as NIOTooManyBytesError {
            throw .rejected(status: 413, body: "the answer is larger than \(limit) bytes (\(error))")
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .failure(let error):
            throw .unavailable("\(error)")
        case .success(let (status, body)):
            if (200..<300).contains(status) { return Array(buffer: body) }
            let text = String(decoding: Array(buffer: body).prefix(500), as: UTF8.self)
            if status >= 500 || status == 408 || status == 429 { throw .unavailable("status \(status): \(text)") }
            throw .rejected(status: status, body: text)
        }
    }
}
