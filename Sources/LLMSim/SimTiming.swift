/// The simulator's timing model: the first token comes after the time to first token
/// (TTFT), then one token every 1/tps seconds.
///
/// Precedence, per request:
/// - streaming: first token after `ttft=` ?? `delay=` ?? `LLM_SIM_TTFT_MS`; tokens at `tps=` ?? `LLM_SIM_TOKENS_PER_SECOND`.
/// - non-streaming: the whole answer after `delay=`; else, when the request sets `ttft=` or
///   `tps=`, after ttft + tokens/tps; else after `LLM_SIM_LATENCY_MS` when that is set;
///   else after ttft + tokens/tps from the configuration.
struct SimTiming: Sendable, Equatable {
    var timeToFirstToken: Duration = .milliseconds(150)
    var tokensPerSecond: Double = 80
    /// `LLM_SIM_LATENCY_MS`: a fixed time for non-streaming answers (the old model).
    var fixedLatency: Duration?

    /// The timing of one request.
    func pacing(for directives: SimDirectives) -> SimPacing {
        let ttft = directives.ttftMilliseconds.map { Duration.milliseconds($0) }
        let first = ttft ?? directives.delayMilliseconds.map { .milliseconds($0) } ?? timeToFirstToken
        let override: Duration? =
            if let delay = directives.delayMilliseconds { .milliseconds(delay) } else if ttft != nil || directives.tokensPerSecond != nil { nil } else
            { fixedLatency }
        return SimPacing(
            firstToken: first,
            tokensPerSecond: directives.tokensPerSecond ?? tokensPerSecond,
            fixedAnswerTime: override
        )
    }
}

/// When the tokens of one answer are ready, measured from the request's arrival.
struct SimPacing: Sendable, Equatable {
    var firstToken: Duration
    var tokensPerSecond: Double
    /// A fixed time for the non-streaming answer, overriding the token model.
    var fixedAnswerTime: Duration?

    /// When token `index` (from 0) is ready: TTFT + index/tps.
    func tokenReady(_ index: Int) -> Duration {
        firstToken + Self.duration(tokens: index, perSecond: tokensPerSecond)
    }

    /// When a non-streaming answer of `tokens` tokens is sent: the fixed time, or TTFT + tokens/tps.
    func wholeAnswer(tokens: Int) -> Duration {
        fixedAnswerTime ?? firstToken + Self.duration(tokens: tokens, perSecond: tokensPerSecond)
    }

    /// How long `tokens` tokens take, to the nanosecond (so equal inputs give equal durations).
    static func duration(tokens: Int, perSecond: Double) -> Duration {
        .nanoseconds(Int64(min((Double(tokens) / perSecond * 1e9).rounded(), 9e18)))
    }
}
