import Foundation
import Testing

@testable import Gateway
@testable import Shared

@Suite("Client frames")
struct ClientFrameTests {
    let decoder = ClientFrameDecoder(maxContentCharacters: 10)
    static let session = UUID(uuidString: "6D5E98A0-6792-40FD-800A-22D6F8425E36")!

    @Test(arguments: [
        (#"{"type":"start","request_id":"r1","topic_id":5,"course_id":2}"#, ClientFrame.start(requestID: "r1", topicID: 5, courseID: 2)),
        (#"{"type":"start"}"#, .start(requestID: nil, topicID: nil, courseID: nil)),
        (#"{"type":"message","content":" oi ","client_msg_id":"c1"}"#, .message(sessionID: nil, content: "oi", clientMessageID: "c1")),
        (
            #"{"type":"message","session_id":"6d5e98a0-6792-40fd-800a-22d6f8425e36","content":"oi"}"#,
            .message(sessionID: session, content: "oi", clientMessageID: nil)
        ),
        (#"{"type":"resume","session_id":"6d5e98a0-6792-40fd-800a-22d6f8425e36","after_id":41}"#, .resume(sessionID: session, afterID: 41)),
        ("olá mundo", .message(sessionID: nil, content: "olá mundo", clientMessageID: nil)),
        (#"{"type":"start","topic_id":0,"course_id":1}"#, .start(requestID: nil, topicID: 0, courseID: 1)),
        (#"{"type":"resume","session_id":"6d5e98a0-6792-40fd-800a-22d6f8425e36","after_id":1}"#, .resume(sessionID: session, afterID: 1)),
        (#"{"type":"resume","session_id":"6d5e98a0-6792-40fd-800a-22d6f8425e36"}"#, .resume(sessionID: session, afterID: 0)),
    ])
    func validFramesDecode(text: String, expected: ClientFrame) throws {
        #expect(try decoder.decode(text) == expected)
    }

    @Test(arguments: [
        ("{not json", "malformed_frame"),
        (#"{"content":"x"}"#, "malformed_frame"),
        (#"{"type":"dance"}"#, "unknown_type"),
        (#"{"type":"message"}"#, "malformed_frame"),
        (#"{"type":"message","content":7}"#, "malformed_frame"),
        (#"{"type":"message","content":"x","session_id":"nope"}"#, "malformed_frame"),
        (#"{"type":"message","content":"   "}"#, "empty_content"),
        (#"{"type":"message","content":"oi\u0000tudo"}"#, "invalid_content"),
        ("oi\u{0}tudo", "invalid_content"),
        (#"{"type":"message","content":"12345678901"}"#, "content_too_long"),
        ("12345678901", "content_too_long"),
        (#"{"type":"start","topic_id":"five"}"#, "malformed_frame"),
        (#"{"type":"start","topic_id":true}"#, "malformed_frame"),
        (#"{"type":"start","topic_id":1.5}"#, "malformed_frame"),
        (#"{"type":"resume"}"#, "malformed_frame"),
    ])
    func badFramesGetTheirCode(text: String, code: String) {
        #expect { try decoder.decode(text) } throws: { error in
            (error as? ClientError)?.code.rawValue == code
        }
    }

    @Test func aWrongTypeNamesTheField() {
        #expect { try decoder.decode(#"{"type":"start","course_id":"two"}"#) } throws: { error in
            (error as? ClientError)?.message == "\"course_id\" must be a whole number"
        }
    }

    @Test func errorsEchoTheClientsIdentifiers() {
        #expect { try decoder.decode(#"{"type":"message","content":"12345678901","client_msg_id":"c9"}"#) } throws: { error in
            (error as? ClientError)?.clientMessageID == "c9"
        }
        #expect { try decoder.decode(#"{"type":"message","content":5,"client_msg_id":"c8"}"#) } throws: { error in
            (error as? ClientError)?.clientMessageID == "c8"
        }
        #expect { try decoder.decode(#"{"type":"dance","request_id":"r9"}"#) } throws: { error in
            (error as? ClientError)?.requestID == "r9"
        }
    }
}

@Suite("Server frames")
struct ServerFrameTests {
    func object(_ frame: ServerFrame) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(frame.text.utf8)) as? [String: Any])
    }

    @Test func errorFramesCarryCodeMessageAndContext() throws {
        let turn = UUID()
        let json = try object(.error(code: .forbidden, message: "no", context: .init(turnID: turn, clientMessageID: "c1")))
        #expect(json["type"] as? String == "error")
        #expect(json["code"] as? String == "forbidden")
        #expect(json["message"] as? String == "no")
        #expect(json["turn_id"] as? String == turn.lowercased)
        #expect(json["client_msg_id"] as? String == "c1")
        #expect(json["session_id"] == nil)
    }

    @Test func replyFramesCarryTheMessage() throws {
        let session = UUID()
        let done = ReplyEnvelope.Done(
            sessionID: session,
            turnID: UUID(),
            message: .init(id: 7, role: .assistant, content: "oi", timestamp: Date()),
            status: "active",
            completed: false,
            usage: .init()
        )
        let json = try object(.reply(done))
        #expect(json["type"] as? String == "reply")
        #expect(json["session_id"] as? String == session.lowercased)
        #expect(json["status"] as? String == "active")
        #expect(json["completed"] as? Bool == false)
        let message = try #require(json["message"] as? [String: Any])
        #expect(message["id"] as? Int == 7)
        #expect(message["role"] as? String == "assistant")
        #expect(message["content"] as? String == "oi")
        #expect(json["usage"] == nil)
    }
}
