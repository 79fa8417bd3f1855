import Testing

@testable import LLMSim

@Suite("LLM simulator: directives, tutor, tokens, timing")
struct SimulatorTests {
    @Test(arguments: [
        ("plain", SimDirectives()),
        ("x [sim:delay=1500] y", SimDirectives(delayMilliseconds: 1500)),
        ("[sim:status=503,delay=10]", SimDirectives(delayMilliseconds: 10, status: 503)),
        ("[sim:status=abc]", SimDirectives()),
        ("[sim:delay=5", SimDirectives()),
        ("[sim:status=200]", SimDirectives()),
        ("[sim:status=429,retry_after=2]", SimDirectives(status: 429, retryAfterSeconds: 2)),
        ("[sim:quota]", SimDirectives(quota: true)),
        ("[sim:safety=true]", SimDirectives(safety: true)),
        ("[sim:ttft=2000, tps=12.5, tokens=300]", SimDirectives(ttftMilliseconds: 2000, tokensPerSecond: 12.5, tokens: 300)),
        ("[sim:cut=5,malformed=3]", SimDirectives(cutAfter: 5, malformedAfter: 3)),
        ("[sim:status=503,fail_first=2,only=gemini]", SimDirectives(status: 503, failFirst: 2, only: .gemini)),
        ("[sim:tps=0,tokens=0,only=claude,bogus=1,status=500]", SimDirectives(status: 500)),
        ("[sim:status=503] a [sim:status=429,cut=1]", SimDirectives(status: 429, cutAfter: 1)),
        ("[session-start] [sim:tokens=7]", SimDirectives(tokens: 7)),
    ])
    func markersAreParsed(text: String, expected: SimDirectives) {
        #expect(SimDirectives(parsing: text) == expected)
    }

    @Test(arguments: [
        ("status=429, retry_after=3", SimDirectives(status: 429, retryAfterSeconds: 3)),
        ("[sim:cut=2]", SimDirectives(cutAfter: 2)),
        ("safety,ttft=0", SimDirectives(safety: true, ttftMilliseconds: 0)),
        ("", SimDirectives()),
        ("status=nope", SimDirectives()),
    ])
    func theHeaderIsParsed(header: String, expected: SimDirectives) {
        #expect(SimDirectives(list: header) == expected)
    }

    @Test(arguments: [("status=abc", "status=abc"), ("status=503,bogus", "bogus"), ("cut=-1", "cut=-1"), ("only=x", "only=x")])
    func aConfiguredFaultIsValidated(list: String, badPair: String) {
        #expect(throws: SimDirectives.DirectiveError(pair: badPair)) { try SimDirectives(validating: list) }
    }

    @Test func directivesPrintAsTheirListAndReadBack() throws {
        let directives = SimDirectives(
            delayMilliseconds: 1,
            status: 503,
            retryAfterSeconds: 2,
            quota: true,
            safety: true,
            ttftMilliseconds: 3,
            tokensPerSecond: 4.5,
            tokens: 6,
            cutAfter: 7,
            malformedAfter: 8,
            failFirst: 9,
            only: .openai
        )
        #expect(try SimDirectives(validating: directives.description) == directives)
        #expect(SimDirectives(status: 429, cutAfter: 1).description == "status=429,cut=1")
    }

    @Test func laterSourcesOverrideEarlierOnes() {
        let configured = SimDirectives(status: 503, cutAfter: 4)
        let merged = configured.overridden(by: SimDirectives(status: 429, ttftMilliseconds: 5))
        #expect(merged == SimDirectives(status: 429, ttftMilliseconds: 5, cutAfter: 4))
        #expect(merged.hasFault && !merged.withoutFaults.hasFault)
        #expect(merged.withoutFaults == SimDirectives(ttftMilliseconds: 5))
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
        let openedByTheModel: [SimulatedTutor.Message] = [
            .init(role: "user", content: "[session-start] cue"), .init(role: "assistant", content: "Olá!"), .init(role: "user", content: "oi"),
        ]
        #expect(tutor.reply(to: openedByTheModel) == "Resposta 1: você disse \"oi\".")
    }

    @Test(arguments: [
        ("[session-start] O aluno acabou de abrir uma sessão sobre Frações. Cumprimente-o.", "Olá! Vamos começar sobre Frações."),
        ("[session-start] O aluno acabou de abrir uma sessão sobre o tema da conversa. Cumprimente-o.", "Olá! Vamos começar."),
        ("[session-start] O aluno abriu a sessão.", "Olá! Vamos começar."),
    ])
    func theTutorsOpeningNamesTheTopicOfTheCue(cue: String, opening: String) {
        #expect(SimulatedTutor().reply(to: [.init(role: "user", content: cue)]).hasPrefix(opening + " "))
    }

    @Test func theTutorFollowsTheCompletionProtocol() {
        let tutor = SimulatedTutor()
        let system = SimulatedTutor.Message(role: "system", content: "Tutor. Ao fim escreva {TOPIC_COMPLETED}. Use {x} nunca.")
        #expect(
            tutor.reply(to: [system, .init(role: "user", content: "eu domino frações")])
                == "Parabéns! Você demonstrou domínio do tema. {TOPIC_COMPLETED}"
        )
        #expect(tutor.reply(to: [system, .init(role: "user", content: "ainda não sei")]).hasPrefix("Resposta 1"))
        // Without a marker in the system prompt there is nothing to complete.
        #expect(tutor.reply(to: [.init(role: "system", content: "Tutor."), .init(role: "user", content: "eu domino")]).hasPrefix("Resposta 1"))
    }

    @Test(arguments: [
        ("Olá! Vamos começar.", ["Olá", "!", " Vamos", " come", "çar", "."]),
        ("Resposta 1: você disse \"b\".", ["Resp", "osta", " 1", ":", " você", " disse", " \"", "b", "\"", "."]),
        ("  a\n\nb  ", ["  a", "\n\nb", "  "]),
        ("", []),
        ("🌍🌍", ["🌍", "🌍"]),
    ])
    func textIsSplitIntoTokens(text: String, expected: [String]) {
        #expect(SimTokenizer.tokens(of: text) == expected)
        #expect(SimTokenizer.tokens(of: text).joined() == text)
        #expect(SimTokenizer.count(text) == expected.count)
    }

    /// The fast count and the ASCII shortcut agree with Unicode's own classification
    /// (`Character.isLetter`, `isNumber`, `isWhitespace`) on every ASCII character and a
    /// few others, alone and in words of every length.
    @Test func theCountIsTheNumberOfTokensForEveryKindOfCharacter() {
        let characters = (0..<128).map { Character(Unicode.Scalar(UInt8($0))) } + ["é", "ç", "½", "\u{00A0}", "\u{2003}", "🌍", "\r\n", "e\u{301}"]
        for character in characters {
            let unicodeWord = character.isLetter || character.isNumber
            for text in [String(character), "ab\(character)cd", "abcdef\(character)", " \(character) ", String(repeating: character, count: 9)] {
                #expect(SimTokenizer.count(text) == SimTokenizer.tokens(of: text).count, "\(text.debugDescription)")
                #expect(SimTokenizer.tokens(of: text).joined() == text)
            }
            // "xcy" is one word, "x" " y" two tokens, "x" "c" "y" three.
            let expected = unicodeWord ? 1 : character.isWhitespace ? 2 : 3
            #expect(SimTokenizer.tokens(of: "x\(character)y").count == expected, "\(character.debugDescription)")
        }
    }

    @Test(arguments: [
        "Olá! Vamos começar. Em poucas palavras: o que você já sabe sobre este tema?",
        "Paralelepípedo, inconstitucionalmente... 12345678 x\ty",
        "Resposta 3: você disse \"teste [com] colchetes\".",
    ])
    func tokensJoinToTheText(text: String) {
        #expect(SimTokenizer.tokens(of: text).joined() == text)
    }

    @Test(arguments: [1, 3, 11, 12, 50, 300])
    func aReplyCanBeMadeExactlyNTokensLong(count: Int) {
        let reply = SimTokenizer.tokens(of: "Resposta 1: você disse \"olá mundo\".")  // 11 tokens
        let exact = SimTokenizer.exactly(count, from: reply)
        #expect(exact.count == count)
        #expect(SimTokenizer.count(exact.joined()) == count)
        #expect(exact.joined().hasPrefix(reply.prefix(count).joined()))
    }

    @Test func timingFollowsItsPrecedence() {
        let timing = SimTiming(timeToFirstToken: .milliseconds(100), tokensPerSecond: 10, fixedLatency: .milliseconds(20))
        // Non-streaming: the fixed latency when the request says nothing about timing.
        #expect(timing.pacing(for: SimDirectives()).wholeAnswer(tokens: 5) == .milliseconds(20))
        // delay= wins over everything, for both kinds.
        let delayed = timing.pacing(for: SimDirectives(delayMilliseconds: 900))
        #expect(delayed.wholeAnswer(tokens: 5) == .milliseconds(900))
        #expect(delayed.firstToken == .milliseconds(900))
        // ttft= or tps= on the request switch the non-streaming answer to the token model.
        let slow = timing.pacing(for: SimDirectives(ttftMilliseconds: 300))
        #expect(slow.wholeAnswer(tokens: 5) == .milliseconds(800))
        #expect(timing.pacing(for: SimDirectives(tokensPerSecond: 100)).wholeAnswer(tokens: 5) == .milliseconds(150))
        // Streaming: token i at ttft + i/tps.
        let plain = timing.pacing(for: SimDirectives())
        #expect(plain.tokenReady(0) == .milliseconds(100))
        #expect(plain.tokenReady(3) == .milliseconds(400))
        #expect(
            SimTiming(timeToFirstToken: .milliseconds(100), tokensPerSecond: 10).pacing(for: SimDirectives()).wholeAnswer(tokens: 5)
                == .milliseconds(600)
        )
    }
}
