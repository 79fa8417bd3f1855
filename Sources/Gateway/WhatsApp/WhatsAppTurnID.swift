import Crypto
import Foundation

/// The id of a turn for a WhatsApp message: a name-based UUID (RFC 9562 version 5) of
/// the message id and the claim (`attempt`) that made the turn. The relay writes it
/// in the message's row before it sends the turn, so a relay that takes the message up
/// again after a restart sends the same turn — which the ledger and the store answer
/// once — and makes a new one only when the previous one certainly ended unanswered.
enum WhatsAppTurnID {
    /// This namespace's own UUID (a v4, fixed once).
    static let namespace = UUID(uuidString: "6f1c2a4e-8d0b-4e59-9a43-5b7e1f0c9d21")!

    static func of(messageID: String, attempt: Int) -> UUID {
        var data = withUnsafeBytes(of: namespace.uuid) { Array($0) }
        data += Array("whatsapp:\(messageID):\(attempt)".utf8)
        var bytes = Array(Insecure.SHA1.hash(data: data).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            )
        )
    }
}
