import Foundation

/// A message a WhatsApp user sent, as the Cloud API's webhook delivered it.
public struct WhatsAppInbound: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case text
        /// A voice note or audio file: transcribed, then handled as text.
        case audio
        /// An image, a sticker, a location…: answered with what Parley can read.
        case unsupported
    }

    /// The Cloud API's message id (`wamid.…`): a redelivery carries the same one.
    public var messageID: String
    /// The business number that received it, and that answers.
    public var phoneNumberID: String
    /// The sender's WhatsApp id (their number, digits only).
    public var sender: String
    public var kind: Kind
    /// The text; for audio, its transcription once made.
    public var text: String?
    /// The audio's media id at the Graph API.
    public var mediaID: String?

    public init(messageID: String, phoneNumberID: String, sender: String, kind: Kind, text: String? = nil, mediaID: String? = nil) {
        self.messageID = messageID
        self.phoneNumberID = phoneNumberID
        self.sender = sender
        self.kind = kind
        self.text = text
        self.mediaID = mediaID
    }
}
