import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Shared

/// The WhatsApp Cloud API's webhook at `/whatsapp/webhook`:
///
/// - `GET`: Meta's verification (`hub.mode=subscribe`, `hub.verify_token`,
///   `hub.challenge`), answered with the challenge when the token is
///   `WHATSAPP_VERIFY_TOKEN`.
/// - `POST`: a delivery. Its `X-Hub-Signature-256` must be the HMAC of the raw body
///   with `WHATSAPP_APP_SECRET` (else 401 and nothing is stored); its messages are
///   stored (a redelivered message id stores nothing) *before* the 200, and the
///   relay answers them. When they cannot be stored the answer is 503, and the Cloud
///   API delivers again. Status callbacks are counted.
struct WhatsAppWebhook: Sendable {
    let settings: WhatsAppSettings.CloudAPI
    let inbox: any WhatsAppInbox
    let logger: Logger
    /// The Cloud API's deliveries are a few kilobytes; this leaves room for batches.
    var maxBodyBytes = 1 << 20

    static let path = "/whatsapp/webhook"

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.get(RouterPath(Self.path)) { request, _ in try verify(request) }
        router.post(RouterPath(Self.path)) { request, _ in try await receive(request) }
    }

    /// `GET`: the subscription's verification.
    func verify(_ request: Request) throws(GatewayHTTPError) -> Response {
        let query = request.uri.queryParameters
        guard query.get("hub.mode") == "subscribe" else {
            throw GatewayHTTPError(status: .badRequest, code: .malformedRequest, message: "hub.mode must be subscribe")
        }
        // Compared as digests: equal-length values, compared in constant time.
        let given = SHA256.hash(data: Data((query.get("hub.verify_token") ?? "").utf8))
        guard given == SHA256.hash(data: Data(settings.verifyToken.utf8)) else {
            throw GatewayHTTPError(status: .forbidden, code: .forbidden, message: "hub.verify_token is not this gateway's WHATSAPP_VERIFY_TOKEN")
        }
        guard let challenge = query.get("hub.challenge"), !challenge.isEmpty, challenge.count <= 256,
            challenge.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
        else {
            throw GatewayHTTPError(
                status: .badRequest,
                code: .malformedRequest,
                message: "hub.challenge must be up to 256 letters, digits, '-', '_' or '.'"
            )
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: String(challenge)))
        )
    }

    /// `POST`: a delivery, stored before it is acknowledged.
    func receive(_ request: Request) async throws(GatewayHTTPError) -> Response {
        var request = request
        let bytes: [UInt8]
        do {
            bytes = Array(buffer: try await request.collectBody(upTo: maxBodyBytes))
        } catch let error as HTTPResponseError where error.status == .contentTooLarge {
            throw GatewayHTTPError(status: .contentTooLarge, code: .bodyTooLarge, message: "the delivery is larger than \(maxBodyBytes) bytes")
        } catch {
            throw GatewayHTTPError(status: .badRequest, code: .malformedRequest, message: "the request body could not be read")
        }
        guard WebhookSignature.isValid(request.headers[HTTPField.Name(WebhookSignature.header)!], body: bytes, secret: settings.appSecret) else {
            logger.warning("refused a WhatsApp webhook delivery with a bad signature", metadata: ["bytes": "\(bytes.count)"])
            throw GatewayHTTPError(status: .unauthorized, code: .invalidSignature, message: ErrorCode.invalidSignature.message)
        }
        let payload: WebhookPayload
        do {
            payload = try JSONDecoder().decode(WebhookPayload.self, from: Data(bytes))
        } catch {
            throw GatewayHTTPError(
                status: .badRequest,
                code: .malformedRequest,
                message: "the body is not a WhatsApp webhook delivery (a JSON object with entry[].changes[])"
            )
        }
        let contents = payload.contents
        let stored: Set<String>
        do {
            stored = try await inbox.store(contents.messages)
        } catch {
            logger.error("cannot store a WhatsApp delivery; the Cloud API will send it again", metadata: ["error": "\(error)"])
            throw GatewayHTTPError(status: .serviceUnavailable, code: .unavailable, message: "the database is unavailable; deliver again later")
        }
        count(contents, stored: stored)
        return .json(
            Acknowledged(
                stored: stored.count,
                duplicates: contents.messages.count - stored.count,
                statuses: contents.statuses.count,
                ignored: contents.ignored
            )
        )
    }

    private struct Acknowledged: Encodable {
        var stored: Int
        var duplicates: Int
        var statuses: Int
        var ignored: Int
    }

    private func count(_ contents: WebhookPayload.Contents, stored: Set<String>) {
        for message in contents.messages {
            let outcome = stored.contains(message.messageID) ? "stored" : "duplicate"
            ParleyMetrics.whatsappMessages.increment(by: 1, [("kind", message.kind.rawValue), ("outcome", outcome)])
        }
        for status in contents.statuses {
            let known = ["sent", "delivered", "read", "failed"].contains(status) ? status : "other"
            ParleyMetrics.whatsappStatuses.increment(by: 1, [("status", known)])
            if status == "failed" { logger.warning("WhatsApp reports a reply as not delivered (status failed)") }
        }
        if !contents.messages.isEmpty {
            logger.info(
                "WhatsApp delivery stored",
                metadata: ["stored": "\(stored.count)", "duplicates": "\(contents.messages.count - stored.count)"]
            )
        }
    }
}
