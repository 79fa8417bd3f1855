/// One turn as a client saw it, in microseconds since the run began.
struct TurnTiming: Sendable {
    /// When the turn was sent (open loop: when it was due, so that a gateway that is
    /// slow to read does not hide its own delay).
    var sentAt: Int64
    var acceptedAt: Int64?
    var firstDeltaAt: Int64?
    var finishedAt: Int64
    /// The error's code, or nil for a reply.
    var errorCode: String?
    var deltas: Int

    var endToEnd: Int64 { finishedAt - sentAt }
    var toAccepted: Int64? { acceptedAt.map { $0 - sentAt } }
    var toFirstDelta: Int64? { firstDeltaAt.map { $0 - sentAt } }
}

extension ContinuousClock.Instant {
    /// Microseconds since `start`.
    func microseconds(since start: ContinuousClock.Instant) -> Int64 {
        let elapsed = start.duration(to: self).components
        return elapsed.seconds * 1_000_000 + elapsed.attoseconds / 1_000_000_000_000
    }
}
