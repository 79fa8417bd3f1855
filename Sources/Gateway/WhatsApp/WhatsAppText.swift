import Shared

/// What a WhatsApp user reads besides the tutor's replies, and how a long reply is cut
/// into messages the Graph API takes.
enum WhatsAppText {
    /// The Graph API's longest text message body.
    static let maxPartCharacters = 4096

    static let unsupported = "I can read text messages and voice notes only. Please write your question, or record it."
    static let voiceNotesOff = "I cannot listen to voice notes here. Please write your question."
    static let emptyMessage = "Your message was empty. Please write your question."
    static let noAnswer = "I have no answer to that. Please ask in another way."

    static func voiceNoteRefused(_ why: String) -> String {
        "I could not understand that voice note (\(why)). Please write your question, or record a shorter one."
    }

    /// The turn ended in an error that asking again will not mend by itself.
    static func notAnswered(_ code: ErrorCode, _ message: String) -> String {
        switch code {
        case .contentTooLong: "Your message is too long for me (\(message)). Please send a shorter one."
        case .invalidContent, .emptyContent: "I could not read that message. Please write it again."
        case .llmBlocked: "I cannot answer that message. Please ask in another way."
        default: "Sorry, I could not answer your message (\(ErrorCode.plainWords(code))). Please send it again in a while."
        }
    }

    /// `text` in parts of at most `maxPartCharacters`, cut after a paragraph, a line or
    /// a space where one is near the end of a part.
    static func parts(of text: String, most: Int = maxPartCharacters) -> [String] {
        var parts: [String] = []
        var rest = Substring(text)
        while rest.count > most {
            let window = rest.prefix(most)
            let floor = window.index(window.startIndex, offsetBy: most / 2)
            let cut =
                window[floor...].range(of: "\n\n", options: .backwards)?.upperBound ?? window[floor...].lastIndex(of: "\n").map {
                    window.index(after: $0)
                }
                ?? window[floor...].lastIndex(of: " ").map { window.index(after: $0) } ?? window.endIndex
            parts.append(String(rest[..<cut]))
            rest = rest[cut...]
        }
        if !rest.isEmpty || parts.isEmpty { parts.append(String(rest)) }
        return parts
    }
}

extension ErrorCode {
    /// A few words for a person: what the code's message says, without advice meant
    /// for a program.
    static func plainWords(_ code: ErrorCode) -> String {
        switch code {
        case .llmUnavailable, .llmRateLimited, .llmQuotaExceeded, .llmBadResponse, .llmRejected: "the language model is unavailable"
        case .expired, .replyTimeout, .unconfirmed: "it took too long"
        case .overloaded, .rateLimited: "too many messages at once"
        default: "Parley is unavailable"
        }
    }
}
