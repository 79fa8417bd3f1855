import Foundation
import Shared

/// How a socket's frames are written. `json`, the default, is the protocol
/// (docs/protocol.md). `text` (`/ws?format=text`) makes the socket a terminal chat for
/// wscat, websocat or `python -m websockets`: plain lines in (as on any socket), and
/// out one line per answer — the reply's text — with errors as
/// `error: <code>: <message>`. What a terminal has no use for (the session and
/// accepted frames, deltas, resets) is not written; the reply carries the whole text.
enum SocketFormat: String, Sendable, CaseIterable {
    case json, text

    /// The format a socket's URL asks for (`format=json|text`); json when it names none.
    init(query: String?) throws(ClientError) {
        guard let name = Authenticator.queryValue("format", in: query) else {
            self = .json
            return
        }
        guard let format = SocketFormat(rawValue: name.lowercased()) else {
            let names = Self.allCases.map(\.rawValue).joined(separator: " or ")
            throw ClientError(code: .malformedRequest, message: "format must be \(names), got \"\(name)\"")
        }
        self = format
    }

    /// What is written to the socket for `frame`; nil: nothing.
    func render(_ frame: ServerFrame) -> String? {
        switch self {
        case .json: frame.text
        case .text: frame.plainText
        }
    }
}

extension ServerFrame {
    /// The frame as a terminal shows it (`SocketFormat.text`); nil when it shows nothing.
    var plainText: String? {
        switch self {
        case .session, .accepted, .delta, .reset:
            return nil
        case .reply(let done):
            var text = done.message.content
            if done.cancelled { text += " [stopped]" }
            if done.completed { text += "\n[topic completed: this session takes no more messages]" }
            return text
        case .history(_, let messages, _, let more):
            var lines = messages.map { "\($0.role == .user ? "you" : "tutor"): \($0.content)" }
            if more { lines.append("[more: resume from message \(messages.last?.id ?? 0)]") }
            return lines.isEmpty ? nil : lines.joined(separator: "\n")
        case .error(let code, let message, _):
            return "error: \(code.rawValue): \(message)"
        }
    }
}
