import Testing

@testable import LLMSim

@Suite("LLM simulator: faults, configuration, counters")
struct SimFaultTests {
    let conversation: [SimulatedTutor.Message] = [.init(role: "user", content: "oi [sim:status=503,fail_first=2]")]

    @Test func theConfiguredShareIsDrawnFromTheSeed() {
        var first = SimFaultPlanner(rate: 0.3, seed: 42)
        var second = SimFaultPlanner(rate: 0.3, seed: 42)
        let draws = (0..<2000).map { _ in first.drawConfigured() }
        #expect(draws == (0..<2000).map { _ in second.drawConfigured() })
        let share = Double(draws.filter { $0 }.count) / Double(draws.count)
        #expect(abs(share - 0.3) < 0.05, "share \(share)")
        var other = SimFaultPlanner(rate: 0.3, seed: 43)
        #expect(draws != (0..<2000).map { _ in other.drawConfigured() })
        first.reset()
        #expect((0..<2000).map { _ in first.drawConfigured() } == draws)
    }

    @Test(arguments: [(0.0, 0), (1.0, 50)])
    func rateZeroNeverFailsAndRateOneAlwaysDoes(rate: Double, faults: Int) {
        var planner = SimFaultPlanner(rate: rate, fault: SimDirectives(cutAfter: 5))
        let resolved = (0..<50).map { _ in
            planner.resolve(header: SimDirectives(), marker: SimDirectives(), provider: .openai, key: 1)
        }
        #expect(resolved.filter(\.hasFault).count == faults)
        #expect(resolved.allSatisfy { $0.hasFault == ($0.cutAfter == 5) })
    }

    @Test func theRequestOverridesTheConfiguredFault() {
        var planner = SimFaultPlanner(rate: 1, fault: SimDirectives(status: 503, cutAfter: 2))
        let resolved = planner.resolve(
            header: SimDirectives(status: 500),
            marker: SimDirectives(status: 429),
            provider: .gemini,
            key: 1
        )
        #expect(resolved == SimDirectives(status: 429, cutAfter: 2))
    }

    @Test func failFirstFailsTheFirstAttemptsOfAConversationOnly() {
        var planner = SimFaultPlanner()
        let marker = SimDirectives(parsing: conversation[0].content)
        let key = SimFaultPlanner.conversationKey(provider: .openai, conversation: conversation)
        func attempt(_ key: UInt64) -> Bool {
            planner.resolve(header: SimDirectives(), marker: marker, provider: .openai, key: key).hasFault
        }
        #expect([attempt(key), attempt(key), attempt(key), attempt(key)] == [true, true, false, false])
        #expect(attempt(key &+ 1), "another conversation has its own attempts")
        planner.reset()
        #expect(attempt(key), "a reset forgets the attempts")
    }

    @Test func conversationKeysAreStableAndTellConversationsApart() {
        let key = SimFaultPlanner.conversationKey(provider: .openai, conversation: conversation)
        #expect(key == SimFaultPlanner.conversationKey(provider: .openai, conversation: conversation))
        #expect(key != SimFaultPlanner.conversationKey(provider: .gemini, conversation: conversation))
        #expect(
            SimFaultPlanner.conversationKey(provider: .openai, conversation: [.init(role: "user", content: "ab")])
                != SimFaultPlanner.conversationKey(provider: .openai, conversation: [.init(role: "use", content: "rab")])
        )
    }

    @Test(arguments: [(SimProvider.openai, false), (.gemini, true)])
    func onlyLimitsFaultsToOneProvider(provider: SimProvider, faulty: Bool) {
        var planner = SimFaultPlanner()
        let marker = SimDirectives(status: 503, ttftMilliseconds: 7, only: .gemini)
        let resolved = planner.resolve(header: SimDirectives(), marker: marker, provider: provider, key: 1)
        #expect(resolved.hasFault == faulty)
        #expect(resolved.ttftMilliseconds == 7)
    }

    @Test(arguments: [
        (SimDirectives(status: 429), SimTurn.Outcome.error(status: 429, retryAfter: 1)),
        (SimDirectives(status: 429, retryAfterSeconds: 5), .error(status: 429, retryAfter: 5)),
        (SimDirectives(status: 503), .error(status: 503, retryAfter: nil)),
        (SimDirectives(status: 503, retryAfterSeconds: 2), .error(status: 503, retryAfter: 2)),
        (SimDirectives(status: 429, quota: true), .quota),
        (SimDirectives(safety: true), .blocked),
        (SimDirectives(cutAfter: 1), .reply),
    ])
    func directivesDecideTheOutcome(directives: SimDirectives, outcome: SimTurn.Outcome) {
        #expect(SimEngine.outcome(of: directives) == outcome)
    }

    @Test func theEngineCountsFaultsAndShapesTheReply() {
        var settings = SimSettings()
        settings.timing = SimTiming(timeToFirstToken: .zero, tokensPerSecond: 1000)
        let engine = SimEngine(settings: settings)
        func turn(_ text: String, max: Int? = nil) -> SimTurn {
            engine.prepare(SimExchange(provider: .gemini, stream: true, conversation: [.init(role: "user", content: text)], maxOutputTokens: max))
        }
        #expect(turn("a [sim:tokens=40]").tokens.count == 40)
        let truncated = turn("a [sim:tokens=40]", max: 10)
        #expect(truncated.tokens.count == 10 && truncated.truncated)
        #expect(turn("a [sim:status=503,fail_first=1]").outcome == .error(status: 503, retryAfter: nil))
        #expect(turn("a [sim:status=503,fail_first=1]").outcome == .reply)
        #expect(engine.stats.snapshot.text.contains("\"faults\":1,"))
        engine.reset()
        #expect(turn("a [sim:status=503,fail_first=1]").outcome == .error(status: 503, retryAfter: nil))
    }

    @Test func countersReportEveryKindAndTheTotals() {
        let stats = SimStats()
        for kind in [SimStats.Kind.openai, .openai, .openaiStream, .gemini, .geminiStream, .geminiStream] { stats.count(kind) }
        stats.countFault()
        #expect(
            stats.snapshot.text
                == #"{"openai":2,"openai_stream":1,"gemini":1,"gemini_stream":2,"faults":1,"streams_closed_by_client":0,"requests":6,"chat_completions":3}"#
        )
        stats.reset()
        #expect(stats.snapshot.text.contains(#""requests":0"#))
    }

    @Test func theConfigurationHasDefaults() throws {
        let settings = try SimSettings(environment: [:])
        #expect(settings.port == 8090 && settings.host == "127.0.0.1")
        #expect(settings.timing == SimTiming(timeToFirstToken: .milliseconds(150), tokensPerSecond: 80, fixedLatency: nil))
        #expect(settings.faultRate == 0 && settings.seed == 1 && settings.fault == SimDirectives(status: 503))
    }

    @Test func theConfigurationIsRead() throws {
        let settings = try SimSettings(environment: [
            "LLM_SIM_PORT": "9000", "LLM_SIM_TTFT_MS": "20", "LLM_SIM_TOKENS_PER_SECOND": "250.5", "LLM_SIM_LATENCY_MS": "",
            "LLM_SIM_FAULT_RATE": "0.25", "LLM_SIM_FAULT": "cut=5,fail_first=1", "LLM_SIM_SEED": "7",
        ])
        #expect(settings.port == 9000)
        #expect(settings.timing == SimTiming(timeToFirstToken: .milliseconds(20), tokensPerSecond: 250.5, fixedLatency: nil))
        #expect(settings.faultRate == 0.25 && settings.seed == 7 && settings.fault == SimDirectives(cutAfter: 5, failFirst: 1))
        #expect(try SimSettings(environment: ["LLM_SIM_LATENCY_MS": "50"]).timing.fixedLatency == .milliseconds(50))
    }

    @Test(arguments: [
        ("LLM_SIM_PORT", "http"), ("LLM_SIM_TTFT_MS", "-1"), ("LLM_SIM_TTFT_MS", "1.5"), ("LLM_SIM_LATENCY_MS", "soon"),
        ("LLM_SIM_TOKENS_PER_SECOND", "0"), ("LLM_SIM_FAULT_RATE", "1.5"), ("LLM_SIM_FAULT", "status=abc"),
        ("LLM_SIM_FAULT", "ttft=5"), ("LLM_SIM_SEED", "-3"),
    ])
    func aBadValueNamesItsVariable(name: String, value: String) {
        let error = #expect(throws: SimConfigurationError.self) { try SimSettings(environment: [name: value]) }
        #expect(error?.message.hasPrefix(name) == true, "\(String(describing: error))")
    }

    @Test(arguments: [
        (Duration.zero, "0s"), (.microseconds(400), "0s"), (.milliseconds(6), "6ms"), (.seconds(1), "1s"),
        (.milliseconds(1500), "1.5s"), (.milliseconds(20_250), "20.25s"), (.seconds(360), "6m0s"), (.milliseconds(61_500), "1m1.5s"),
    ])
    func rateLimitResetsAreWrittenLikeOpenAIs(duration: Duration, text: String) {
        #expect(SimRateLimits.format(duration) == text)
    }

    @Test func rateLimitBudgetsRefillOverAMinute() {
        var limits = SimRateLimits()
        let start = ContinuousClock.now
        let first = limits.consume(tokens: 1000, now: start)
        #expect(first.remainingRequests == 9999 && first.remainingTokens == 1_999_000)
        #expect(SimRateLimits.format(first.resetRequests) == "6ms")
        #expect(first.headers.map(\.0).allSatisfy { $0.hasPrefix("x-ratelimit-") } && first.headers.count == 6)
        let later = limits.consume(tokens: 0, now: start + .seconds(60))
        #expect(later.remainingRequests == 9999 && later.remainingTokens == 2_000_000)
    }
}
