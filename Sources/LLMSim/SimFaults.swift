/// Decides which faults a request gets: the configured share of requests
/// (`LLM_SIM_FAULT_RATE` × `LLM_SIM_FAULT`, drawn from a seeded generator, so a run is
/// reproducible), the request's own directives, `only=` and `fail_first=`.
/// A value type; the simulator keeps one behind a lock.
struct SimFaultPlanner: Sendable {
    /// The share of requests (0…1) that get `fault`.
    var rate: Double
    var fault: SimDirectives
    var seed: UInt64
    private var generator: SplitMix64
    /// Attempts seen per conversation key, for `fail_first`.
    private var attempts: [UInt64: Int] = [:]

    init(rate: Double = 0, fault: SimDirectives = SimDirectives(status: 503), seed: UInt64 = 1) {
        self.rate = rate
        self.fault = fault
        self.seed = seed
        self.generator = SplitMix64(seed: seed)
    }

    /// The directives one request runs with. `configured` (the random draw) is overridden
    /// by `header`, which is overridden by `marker`; faults are dropped for another
    /// provider than `only=` names, and after the first `fail_first=` attempts of `key`.
    mutating func resolve(header: SimDirectives, marker: SimDirectives, provider: SimProvider, key: UInt64) -> SimDirectives {
        let configured = drawConfigured() ? fault : SimDirectives()
        let merged = configured.overridden(by: header).overridden(by: marker)
        guard merged.hasFault else { return merged }
        if let only = merged.only, only != provider { return merged.withoutFaults }
        if let failFirst = merged.failFirst {
            let attempt = recordAttempt(key: key)
            if attempt > failFirst { return merged.withoutFaults }
        }
        return merged
    }

    /// Whether the next request gets the configured fault.
    mutating func drawConfigured() -> Bool {
        guard rate > 0 else { return false }
        return generator.nextUnitInterval() < rate
    }

    /// Counts one more attempt of the conversation `key` and returns its number (from 1).
    mutating func recordAttempt(key: UInt64) -> Int {
        attempts[key, default: 0] += 1
        return attempts[key, default: 0]
    }

    /// Forgets the attempts and restarts the generator from the seed.
    mutating func reset() {
        attempts = [:]
        generator = SplitMix64(seed: seed)
    }

    /// A stable key for a conversation at a provider (FNV-1a over roles and texts), so
    /// a retry of the same request counts as another attempt of it.
    static func conversationKey(provider: SimProvider, conversation: [SimulatedTutor.Message]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ text: String) {
            for byte in text.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
            hash ^= 0xFF  // separator: no UTF-8 byte is 0xFF
            hash = hash &* 0x0000_0100_0000_01B3
        }
        mix(provider.rawValue)
        for message in conversation {
            mix(message.role)
            mix(message.content)
        }
        return hash
    }
}

/// SplitMix64: a small, fast, seedable generator (Steele, Lea, Flood 2014).
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in [0, 1).
    mutating func nextUnitInterval() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }
}
