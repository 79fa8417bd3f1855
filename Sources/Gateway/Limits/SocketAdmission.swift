import Synchronization

/// Caps on open sockets: for the whole gateway and per user. `admit` takes a place,
/// `leave` gives it back.
final class SocketAdmission: Sendable {
    enum Refusal: Equatable, Sendable {
        case gatewayFull(limit: Int)
        case userFull(limit: Int)
    }

    private struct Counts {
        var total = 0
        var byUser: [String: Int] = [:]
    }

    private let maxSockets: Int
    private let maxPerUser: Int
    private let counts = Mutex(Counts())

    init(maxSockets: Int, maxPerUser: Int) {
        self.maxSockets = maxSockets
        self.maxPerUser = maxPerUser
    }

    func admit(_ user: String) -> Refusal? {
        counts.withLock { counts in
            guard counts.total < maxSockets else { return .gatewayFull(limit: maxSockets) }
            guard counts.byUser[user, default: 0] < maxPerUser else { return .userFull(limit: maxPerUser) }
            counts.total += 1
            counts.byUser[user, default: 0] += 1
            return nil
        }
    }

    func leave(_ user: String) {
        counts.withLock { counts in
            counts.total -= 1
            counts.byUser[user, default: 1] -= 1
            if counts.byUser[user] == 0 { counts.byUser[user] = nil }
        }
    }
}
