/// Whether a session's replies are routed to this gateway (its reply queue bound to
/// the session's routing key), as a value. Bind and unbind never overlap: a listener
/// arriving while the session is being bound waits for that bind; one arriving
/// while it is being unbound waits for the unbind to finish, then binds again.
///
/// `Waiter` is whatever the owner resumes when a bind or unbind it waits for ends
/// (`TurnPipeline` keeps continuations; the tests, numbers).
struct ReplySubscription<Waiter> {
    enum State {
        case unbound
        case binding(waiters: [Waiter])
        case bound
        case unbinding(waiters: [Waiter])
    }

    /// What a listener that wants the session's replies does next.
    enum AttachAction: Equatable {
        /// The replies come here already.
        case ready
        /// Bind now, then report `bindSucceeded` or `bindFailed`.
        case bind
        /// A bind or an unbind is under way: `enqueue` a waiter and wait for it.
        case wait
    }

    private(set) var state: State = .unbound

    var isUnbound: Bool {
        if case .unbound = state { return true }
        return false
    }

    mutating func attach() -> AttachAction {
        switch state {
        case .unbound:
            state = .binding(waiters: [])
            return .bind
        case .bound:
            return .ready
        case .binding, .unbinding:
            return .wait
        }
    }

    /// Waits for the bind or unbind under way; false when none is (attach again).
    mutating func enqueue(_ waiter: Waiter) -> Bool {
        switch state {
        case .binding(var waiters):
            waiters.append(waiter)
            state = .binding(waiters: waiters)
            return true
        case .unbinding(var waiters):
            waiters.append(waiter)
            state = .unbinding(waiters: waiters)
            return true
        case .unbound, .bound:
            return false
        }
    }

    /// The bind worked; returns the listeners that waited for it (now served).
    mutating func bindSucceeded() -> [Waiter] {
        guard case .binding(let waiters) = state else { return [] }
        state = .bound
        return waiters
    }

    /// The bind failed; returns the listeners that waited for it (they fail too).
    mutating func bindFailed() -> [Waiter] {
        guard case .binding(let waiters) = state else { return [] }
        state = .unbound
        return waiters
    }

    /// Nobody needs the replies any more: true when the owner must unbind now.
    mutating func release() -> Bool {
        guard case .bound = state else { return false }
        state = .unbinding(waiters: [])
        return true
    }

    /// The unbind ended (done or failed); returns the listeners that waited for it
    /// (they attach again).
    mutating func unbindFinished() -> [Waiter] {
        guard case .unbinding(let waiters) = state else { return [] }
        state = .unbound
        return waiters
    }
}

extension ReplySubscription.AttachAction: Sendable {}
