import Testing

@testable import LLMSim

@Suite("LLM simulator")
struct SimulatorTests {
    @Test(arguments: [
        ("plain", SimDirectives()),
        ("x [sim:delay=1500] y", SimDirectives(delayMilliseconds: 1500)),
        ("[sim:status=503,delay=10]", SimDirectives(delayMilliseconds: 10, status: 503)),
        ("[sim:status=abc]", SimDirectives()),
        ("[sim:delay=5", SimDirectives()),
    ])
    func directivesAreParsed(text: String, expected: SimDirectives) {
        #expect(SimDirectives(parsing: text) == expected)
    }

    @Test func markersAreStrippedFromTheEcho() {
        #expect(SimDirectives.stripped(from: "oi [sim:delay=5] tudo") == "oi  tudo")
    }

    @Test func theTutorIsDeterministicAndFollowsTheConversation() {
        let tutor = SimulatedTutor()
        let conversation: [SimulatedTutor.Message] = [
            .init(role: "system", content: "sys"), .init(role: "user", content: "a"),
            .init(role: "assistant", content: "x"), .init(role: "user", content: "b [sim:delay=1]"),
        ]
        #expect(tutor.reply(to: conversation) == "Resposta 2: você disse \"b\".")
        #expect(tutor.reply(to: conversation) == tutor.reply(to: conversation))
        #expect(tutor.reply(to: [.init(role: "user", content: "[session-start] hi")]).hasPrefix("Olá!"))
    }
}
