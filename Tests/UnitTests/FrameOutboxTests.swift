import Foundation
import Logging
import Testing

@testable import Gateway
@testable import Shared

@Suite("Socket outbox")
struct FrameOutboxTests {
    @Test func heldFramesFollowTheHistoryWithoutRepeatingIt() async {
        let outbox = FrameOutbox(userID: "u", capacity: 10, logger: Logger(label: "test"))
        let session = UUID()
        let other = UUID()
        func reply(_ id: Int64, in session: UUID) -> ServerFrame {
            .reply(
                .init(
                    sessionID: session,
                    turnID: UUID(),
                    message: .init(id: id, role: .assistant, content: "r\(id)", timestamp: Date()),
                    status: "active",
                    completed: false,
                    usage: .init()
                )
            )
        }
        outbox.hold()
        outbox.send(reply(5, in: session))  // already in the history below
        outbox.send(reply(4, in: other))  // another session's: kept
        outbox.send(reply(7, in: session))  // newer than the history: kept
        let history: [ChatMessage] = [.init(id: 5, role: .assistant, content: "r5", timestamp: Date())]
        outbox.release(first: .history(sessionID: session, messages: history, status: "active", more: false), session: session, coveredUpTo: 5)
        outbox.send(reply(8, in: session))
        outbox.finish()
        var order: [String] = []
        for await frame in outbox.frames {
            let text = frame.text
            let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
            let id = (json["message"] as? [String: Any])?["id"] as? Int
            order.append("\(json["type"] as? String ?? "?")\(id.map { ":\($0)" } ?? "")")
        }
        #expect(order == ["history", "reply:4", "reply:7", "reply:8"])
    }

    func reply(_ id: Int64, in session: UUID) -> ServerFrame {
        .reply(
            .init(
                sessionID: session,
                turnID: UUID(),
                message: .init(id: id, role: .assistant, content: "r\(id)", timestamp: Date()),
                status: "active",
                completed: false,
                usage: .init()
            )
        )
    }

    func types(_ outbox: FrameOutbox) async -> [String] {
        var types: [String] = []
        for await frame in outbox.frames {
            let json = (try? JSONSerialization.jsonObject(with: Data(frame.text.utf8)) as? [String: Any]) ?? [:]
            types.append([json["type"] as? String, json["code"] as? String].compactMap { $0 }.joined(separator: "/"))
        }
        return types
    }

    /// More replies during a resume than the hold takes: the client is told, not left
    /// with a silent gap.
    @Test func repliesBeyondTheHoldAreReportedAfterTheHistory() async {
        let outbox = FrameOutbox(userID: "u", capacity: 8, logger: Logger(label: "test"))
        let session = UUID()
        outbox.hold()
        for id in 10..<16 { outbox.send(reply(Int64(id), in: session)) }
        outbox.release(first: .history(sessionID: session, messages: [], status: "active", more: false))
        outbox.finish()
        #expect(await types(outbox) == ["history", "reply", "reply", "reply", "reply", "error/missed_replies"])
    }

    /// A socket that does not read until its queue is full of replies is closed (the
    /// client reconnects and resumes) rather than losing a reply without a word.
    @Test func aSocketOverrunByRepliesIsClosedNotSilentlyShort() async {
        let outbox = FrameOutbox(userID: "u", capacity: 4, logger: Logger(label: "test"))
        for id in 1...6 { outbox.send(reply(Int64(id), in: UUID())) }
        #expect(outbox.isOverrun)
        #expect(await types(outbox) == ["reply", "reply", "reply", "reply"])
    }

    @Test func aSlowSocketLosesDeltasButNeverTheReply() async {
        let outbox = FrameOutbox(userID: "u", capacity: 8, logger: Logger(label: "test"))
        let session = UUID()
        let turn = UUID()
        for index in 0..<20 {  // nobody writes: the socket does not read
            outbox.send(.delta(.init(sessionID: session, turnID: turn, index: index, text: "t\(index)")))
        }
        outbox.send(
            .reply(
                .init(
                    sessionID: session,
                    turnID: turn,
                    message: .init(id: 1, role: .assistant, content: "whole", timestamp: Date()),
                    status: "active",
                    completed: false,
                    usage: .init()
                )
            )
        )
        outbox.finish()
        var types: [String] = []
        for await frame in outbox.frames {
            let text = frame.text
            let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
            types.append(json["type"] as? String ?? "?")
        }
        #expect(types == Array(repeating: "delta", count: 4) + ["reply"])
    }
}
