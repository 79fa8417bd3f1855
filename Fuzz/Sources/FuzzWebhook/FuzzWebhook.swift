// libFuzzer entry: any bytes as a WhatsApp Cloud API webhook body. Its signature is
// checked against a header made from the same bytes (the check never traps, and takes
// only the exact HMAC); the body is decoded, and every message taken from it has what
// the relay relies on: a digits-only sender and receiving number, a bounded id, a media
// id safe in a URL path, text for a text message. The bytes as a reply are cut into
// parts that rejoin to it, none longer than the Graph API takes.
import Crypto
import Foundation
import Shared

let secret = SymmetricKey(data: Data("fuzz-app-secret".utf8))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebhook(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let text = String(decoding: bytes, as: UTF8.self)
    precondition(WebhookSignature.isValid(WebhookSignature.sign(bytes, secret: secret), body: bytes, secret: secret), "its own signature was refused")
    precondition(!WebhookSignature.isValid(text, body: bytes, secret: secret) || text.hasPrefix("sha256="), "a header that is not sha256= passed")
    if let payload = try? JSONDecoder().decode(WebhookPayload.self, from: Data(bytes)) {
        for message in payload.contents.messages {
            precondition(WebhookPayload.isIdentifier(message.sender, most: 32), "a bad sender passed: \(message.sender.debugDescription)")
            precondition(WebhookPayload.isIdentifier(message.phoneNumberID, most: 64), "a bad receiving number passed")
            precondition(!message.messageID.isEmpty && message.messageID.utf8.count <= 256, "a bad message id passed")
            if message.kind == .text { precondition(message.text != nil, "a text message without text") }
            if let media = message.mediaID {
                precondition(media.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }, "an unsafe media id passed")
            }
        }
    }
    let parts = WhatsAppText.parts(of: text, most: 64)
    precondition(parts.joined() == text, "the parts do not rejoin to the reply")
    precondition(parts.allSatisfy { $0.count <= 64 } && (parts.count == 1 || parts.allSatisfy { !$0.isEmpty }), "a part too long, or empty")
    return 0
}
