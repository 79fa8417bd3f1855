import GRPCCore

/// When a call's deadline (`grpc-timeout`, as grpc-swift honours it) passes, read
/// from the request's metadata when the handler starts. grpc-swift ends a call past
/// its deadline by cancelling it, without saying why; a call that ends at its
/// deadline must end with `DEADLINE_EXCEEDED`, as gRPC clients expect, not `CANCELLED`.
struct GRPCDeadline: Sendable {
    let instant: ContinuousClock.Instant

    /// The handler starts a little after grpc-swift's own timer: a cancellation this
    /// close to the deadline is the deadline's.
    static let tolerance = Duration.milliseconds(250)

    init?(_ metadata: Metadata, now: ContinuousClock.Instant = .now) {
        guard let text = metadata[stringValues: "grpc-timeout"].first(where: { _ in true }), let timeout = Self.timeout(text) else { return nil }
        instant = now + timeout
    }

    /// Whether a cancellation at `now` is the deadline's.
    func hasPassed(at now: ContinuousClock.Instant = .now) -> Bool {
        now >= instant - Self.tolerance
    }

    /// `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n).
    static func timeout(_ text: String) -> Duration? {
        guard let unit = text.last, text.count >= 2, text.count <= 9, let value = Int64(text.dropLast()), value >= 0 else { return nil }
        switch unit {
        case "H": return .seconds(value * 3600)
        case "M": return .seconds(value * 60)
        case "S": return .seconds(value)
        case "m": return .milliseconds(value)
        case "u": return .microseconds(value)
        case "n": return .nanoseconds(value)
        default: return nil
        }
    }
}
