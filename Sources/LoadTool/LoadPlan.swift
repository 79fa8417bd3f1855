/// What every client of a run does, and when the run ends.
struct LoadPlan: Sendable {
    enum Pace: Sendable {
        /// Each session sends its next turn when the last one is answered, after a pause.
        case closed(think: Duration)
        /// Each client sends turns at this rate whether or not the last ones are answered.
        case open(turnsPerSecondPerClient: Double)
    }

    var url: String
    var sessionsPerClient: Int
    var pace: Pace
    /// The text of every turn, as a JSON string.
    var content: String
    var began: ContinuousClock.Instant
    /// No turn is sent from here on.
    var stopAt: ContinuousClock.Instant
    /// A turn not answered by then is counted as `no_reply`.
    var drainUntil: ContinuousClock.Instant
}
