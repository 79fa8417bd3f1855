/// What one load client's socket has under way: its sessions and the turns it waits
/// for. A value whose transitions return what to do; `LoadClient` performs them.
struct ConnectionState: Sendable {
    struct PendingTurn: Sendable {
        var session: String
        var sentAt: Int64
        var acceptedAt: Int64?
        var firstDeltaAt: Int64?
        var deltas = 0
    }

    /// A turn that has ended, and the session that is free for the next one.
    struct Finished: Sendable {
        var timing: TurnTiming
        var session: String
    }

    /// What a `reply` was to this socket.
    enum Reply: Sendable {
        case finished(Finished)
        /// The tutor's opening of a session just started: the session is ready.
        case opening(session: String)
        /// A reply of no turn this socket waits for: answered twice, or not ours.
        case unexpected
    }

    /// Sessions whose opening has arrived: the ones turns are sent on.
    private(set) var sessions: [String] = []
    private var awaitingOpening: Set<String> = []
    private var pending: [String: PendingTurn] = [:]
    private var clientMessageIDs: [String: String] = [:]
    private var serial = 0
    var stopping = false

    var isIdle: Bool { pending.isEmpty }
    var inFlight: Int { pending.count }

    /// A `session` frame: its opening follows as a `reply` without `accepted`.
    mutating func sessionStarted(_ id: String) { awaitingOpening.insert(id) }

    /// Enters a turn about to be sent; returns its `client_msg_id`.
    mutating func sending(on session: String, at sentAt: Int64) -> String {
        serial += 1
        let id = "c\(serial)"
        pending[id] = PendingTurn(session: session, sentAt: sentAt)
        return id
    }

    mutating func accepted(clientMessageID: String?, turnID: String?, at time: Int64) {
        guard let clientMessageID, let turnID, pending[clientMessageID] != nil else { return }
        pending[clientMessageID]?.acceptedAt = time
        clientMessageIDs[turnID] = clientMessageID
    }

    mutating func delta(turnID: String?, at time: Int64) {
        guard let turnID, let id = clientMessageIDs[turnID], pending[id] != nil else { return }
        if pending[id]?.firstDeltaAt == nil { pending[id]?.firstDeltaAt = time }
        pending[id]?.deltas += 1
    }

    mutating func reply(turnID: String?, session: String?, at time: Int64) -> Reply {
        if let turnID, let id = clientMessageIDs.removeValue(forKey: turnID), let finished = finish(id, errorCode: nil, at: time) {
            return .finished(finished)
        }
        if let session, awaitingOpening.remove(session) != nil {
            sessions.append(session)
            return .opening(session: session)
        }
        return .unexpected
    }

    /// An error frame: it ends the turn it names, if it names one of ours.
    mutating func error(code: String, clientMessageID: String?, turnID: String?, at time: Int64) -> Finished? {
        let id = clientMessageID ?? turnID.flatMap { clientMessageIDs[$0] }
        guard let id, pending[id] != nil else { return nil }
        if let turnID { clientMessageIDs[turnID] = nil }
        return finish(id, errorCode: code, at: time)
    }

    /// Every turn still waiting, ended as `code` (the socket closed, the run's drain
    /// time ran out).
    mutating func abandonAll(code: String, at time: Int64) -> [Finished] {
        let ids = Array(pending.keys)
        clientMessageIDs = [:]
        return ids.compactMap { finish($0, errorCode: code, at: time) }
    }

    private mutating func finish(_ id: String, errorCode: String?, at time: Int64) -> Finished? {
        guard let turn = pending.removeValue(forKey: id) else { return nil }
        let timing = TurnTiming(
            sentAt: turn.sentAt,
            acceptedAt: turn.acceptedAt,
            firstDeltaAt: turn.firstDeltaAt,
            finishedAt: time,
            errorCode: errorCode,
            deltas: turn.deltas
        )
        return Finished(timing: timing, session: turn.session)
    }
}
