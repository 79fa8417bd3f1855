import Foundation
import Testing

@testable import Gateway
@testable import Shared

/// `/ws?format=text`: a terminal sees one line per answer and errors as
/// `error: <code>: <message>`, not the protocol's JSON.
@Suite("Socket formats")
struct SocketFormatTests {
    static let session = UUID()

    static func reply(_ text: String, completed: Bool = false, cancelled: Bool = false) -> ServerFrame {
        .reply(
            .init(
                sessionID: session,
                turnID: UUID(),
                message: .init(id: 7, role: .assistant, content: text, timestamp: Date()),
                status: completed ? "completed" : "active",
                completed: completed,
                usage: .init(),
                cancelled: cancelled
            )
        )
    }

    @Test(arguments: [(nil, SocketFormat.json), ("format=text", .text), ("token=t&format=TEXT", .text), ("format=json", .json)])
    func theFormatComesFromTheQuery(query: String?, format: SocketFormat) throws {
        #expect(try SocketFormat(query: query) == format)
    }

    @Test func anUnknownFormatIsRefusedByName() {
        #expect(throws: ClientError(code: .malformedRequest, message: "format must be json or text, got \"xml\"")) {
            try SocketFormat(query: "format=xml")
        }
    }

    @Test func aTerminalSeesTheAnswerNotTheProtocol() {
        let text = SocketFormat.text
        #expect(text.render(Self.reply("Olá! Vamos começar.")) == "Olá! Vamos começar.")
        #expect(text.render(.session(sessionID: Self.session, status: "active", requestID: nil)) == nil)
        #expect(text.render(.accepted(sessionID: Self.session, turnID: UUID(), clientMessageID: nil)) == nil)
        #expect(text.render(.delta(.init(sessionID: Self.session, turnID: UUID(), index: 0, text: "Ol"))) == nil)
        #expect(text.render(.reset(.init(sessionID: Self.session, turnID: UUID(), reason: "retry"))) == nil)
        #expect(text.render(.error(code: .contentTooLong, message: "at most 4000 characters")) == "error: content_too_long: at most 4000 characters")
        #expect(text.render(Self.reply("Parabéns!", completed: true)) == "Parabéns!\n[topic completed: this session takes no more messages]")
        #expect(text.render(Self.reply("Fra", cancelled: true)) == "Fra [stopped]")
    }

    @Test func aResumedHistoryIsOneLinePerMessage() {
        let messages = [
            ChatMessage(id: 1, role: .user, content: "oi", timestamp: Date()),
            ChatMessage(id: 2, role: .assistant, content: "Olá!", timestamp: Date()),
        ]
        let page = ServerFrame.history(sessionID: Self.session, messages: messages, status: "active", more: true)
        #expect(SocketFormat.text.render(page) == "you: oi\ntutor: Olá!\n[more: resume from message 2]")
        #expect(SocketFormat.text.render(.history(sessionID: Self.session, messages: [], status: "active", more: false)) == nil)
    }

    @Test func jsonIsTheProtocolsFrame() {
        let frame = Self.reply("oi")
        #expect(SocketFormat.json.render(frame) == frame.text)
    }
}
