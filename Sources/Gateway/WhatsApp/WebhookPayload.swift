import Foundation
import Shared

/// A Cloud API webhook delivery (`object: whatsapp_business_account`): the messages
/// and the status callbacks of its `messages` changes. Decoded leniently: fields
/// Parley does not use are ignored, and an item without what Parley needs is skipped
/// (`ignored` counts it) rather than failing the whole delivery.
struct WebhookPayload: Decodable {
    struct Entry: Decodable {
        var changes: [Change]?
    }

    struct Change: Decodable {
        var field: String?
        var value: Value?
    }

    struct Value: Decodable {
        var metadata: Metadata?
        var messages: [Message]?
        var statuses: [Status]?
    }

    struct Metadata: Decodable {
        var phone_number_id: String?
    }

    struct Message: Decodable {
        struct Text: Decodable { var body: String? }
        struct Media: Decodable {
            var id: String?
            var mime_type: String?
        }
        struct Button: Decodable { var text: String? }
        struct Interactive: Decodable {
            struct Reply: Decodable { var title: String? }
            var button_reply: Reply?
            var list_reply: Reply?
        }

        var from: String?
        var id: String?
        var type: String?
        var text: Text?
        var audio: Media?
        var button: Button?
        var interactive: Interactive?
    }

    struct Status: Decodable {
        var id: String?
        var status: String?
        var recipient_id: String?
    }

    var object: String?
    var entry: [Entry]?

    /// What the delivery holds for Parley.
    struct Contents: Equatable {
        var messages: [WhatsAppInbound] = []
        /// Status values (`sent`, `delivered`, `read`, `failed`), one per callback.
        var statuses: [String] = []
        /// Items skipped: without a sender, an id or a receiving number, or of a kind
        /// nobody answers (reactions, system notices).
        var ignored = 0
    }

    var contents: Contents {
        var contents = Contents()
        for change in (entry ?? []).flatMap({ $0.changes ?? [] }) where change.field == "messages" {
            guard let value = change.value else { continue }
            contents.statuses += (value.statuses ?? []).map { $0.status ?? "other" }
            for message in value.messages ?? [] {
                guard let phone = value.metadata?.phone_number_id, Self.isIdentifier(phone, most: 64),
                    let inbound = Self.inbound(message, phoneNumberID: phone)
                else {
                    contents.ignored += 1
                    continue
                }
                contents.messages.append(inbound)
            }
        }
        return contents
    }

    private static func inbound(_ message: Message, phoneNumberID: String) -> WhatsAppInbound? {
        guard let sender = message.from, isIdentifier(sender, most: 32), let id = message.id, !id.isEmpty, id.utf8.count <= 256 else { return nil }
        var inbound = WhatsAppInbound(messageID: id, phoneNumberID: phoneNumberID, sender: sender, kind: .unsupported)
        switch message.type {
        case "text":
            inbound.kind = .text
            inbound.text = message.text?.body ?? ""
        case "button":
            inbound.kind = .text
            inbound.text = message.button?.text ?? ""
        case "interactive":
            inbound.kind = .text
            inbound.text = message.interactive?.button_reply?.title ?? message.interactive?.list_reply?.title ?? ""
        case "audio":
            // It becomes a path segment of a Graph API URL.
            guard let media = message.audio?.id, !media.isEmpty, media.utf8.count <= 256,
                media.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
            else { return nil }
            inbound.kind = .audio
            inbound.mediaID = media
        case "reaction", "system", "ephemeral", "request_welcome":
            return nil
        default:
            break
        }
        // PostgreSQL text cannot hold U+0000: a delivery with one would be refused at
        // every redelivery. It is read as the replacement character.
        inbound.text = inbound.text.map { $0.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") }
        return inbound
    }

    /// Digits only: WhatsApp ids and phone number ids are numbers.
    static func isIdentifier(_ text: String, most: Int) -> Bool {
        !text.isEmpty && text.utf8.count <= most && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
}
