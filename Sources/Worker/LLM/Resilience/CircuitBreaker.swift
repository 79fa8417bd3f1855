import Synchronization

/// Stops calling a provider that keeps failing: after `failureThreshold` failures in
/// a row the circuit opens and requests are refused for `cooldown`; then one trial
/// request is let through (half-open) — its success closes the circuit, its failure
/// opens it again.
final class CircuitBreaker: Sendable {
    enum State: Equatable, Sendable {
        case closed(failures: Int)
        case open(until: ContinuousClock.Instant)
        case halfOpen
    }

    let failureThreshold: Int
    let cooldown: Duration
    private let state = Mutex<State>(.closed(failures: 0))

    init(failureThreshold: Int = 5, cooldown: Duration = .seconds(30)) {
        self.failureThreshold = failureThreshold
        self.cooldown = cooldown
    }

    var current: State { state.withLock { $0 } }

    /// Whether a request may go to the provider now (taking the half-open trial slot).
    func allowsRequest(now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { state in
            switch state {
            case .closed: return true
            case .halfOpen: return false  // the trial request is under way
            case .open(let until):
                guard now >= until else { return false }
                state = .halfOpen
                return true
            }
        }
    }

    func recordSuccess() {
        state.withLock { $0 = .closed(failures: 0) }
    }

    func recordFailure(now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            switch state {
            case .closed(let failures) where failures + 1 < failureThreshold:
                state = .closed(failures: failures + 1)
            case .closed, .halfOpen, .open:
                state = .open(until: now.advanced(by: cooldown))
            }
        }
    }
}
