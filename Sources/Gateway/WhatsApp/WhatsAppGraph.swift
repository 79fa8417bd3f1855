import Foundation

/// What went wrong talking to the Graph API (or the transcription service).
enum GraphError: Error, Equatable, CustomStringConvertible {
    /// It may work later: the connection failed or timed out, a 5xx, 408 or 429.
    case unavailable(String)
    /// It said no (another 4xx): trying the same again will not help.
    case rejected(status: Int, body: String)

    var description: String {
        switch self {
        case .unavailable(let why): "unavailable: \(why)"
        case .rejected(let status, let body): "rejected with \(status): \(body)"
        }
    }

    /// Whether trying again later may succeed.
    var isTransient: Bool {
        if case .unavailable = self { return true }
        return false
    }

    /// A refusal the Graph API gives for the sender's side, which an operator or time
    /// mends: the access token (401, 403) and its throttling codes (80007, 130429,
    /// 131048, 131056). Retried, where a refusal of the message itself is final.
    var isGraphConfigurationOrThrottling: Bool {
        guard case .rejected(let status, let body) = self else { return false }
        return status == 401 || status == 403 || ["80007", "130429", "131048", "131056"].contains { body.contains("\"code\":\($0)") }
    }
}

/// A voice note's file at the Graph API.
struct WhatsAppMedia: Sendable, Equatable {
    var url: String
    var mimeType: String
    /// As the Graph API states it; the download is limited either way.
    var size: Int?
}

/// The WhatsApp Cloud API's Graph API, as far as Parley uses it. `HTTPWhatsAppGraph`
/// is the real one; the tests also run a fake Graph API at the wire.
protocol WhatsAppGraph: Sendable {
    /// `POST /{phone-number-id}/messages`: a text message to `recipient`.
    func send(text: String, to recipient: String, from phoneNumberID: String) async throws(GraphError)
    /// `GET /{media-id}`: where the media's file is.
    func media(id: String) async throws(GraphError) -> WhatsAppMedia
    /// The media's file, at most `limit` bytes (`.rejected(status: 413, …)` when larger).
    func download(_ media: WhatsAppMedia, limit: Int) async throws(GraphError) -> [UInt8]
}

/// Turns speech into text (OpenAI-compatible `POST /audio/transcriptions`).
protocol SpeechTranscriber: Sendable {
    func transcribe(_ audio: [UInt8], mimeType: String) async throws(GraphError) -> String
}
