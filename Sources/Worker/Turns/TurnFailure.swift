import Shared

/// Why a turn was not answered by this attempt; the processor settles the delivery
/// accordingly.
enum TurnFailure: Error, Sendable {
    /// The database failed; the turn is retried (in place while it is an outage).
    case store(StoreError)
    /// Another attempt holds the turn (a redelivery took it over): publish nothing.
    case superseded
    /// The turn had ended before this delivery (an error reply was sent): publish nothing.
    case alreadySettled(TurnLedgerState)
    /// This worker is stopping: give the turn back to the queue, publish nothing.
    case interrupted

    init(_ error: StoreError) {
        if case .superseded = error { self = .superseded } else { self = .store(error) }
    }
}
