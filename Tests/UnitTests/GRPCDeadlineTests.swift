import GRPCCore
import Testing

@testable import Gateway

/// CI finding: when the server's deadline timer fired before the client's, the call
/// ended `CANCELLED` instead of `DEADLINE_EXCEEDED`: the service now tells a call's
/// deadline from a client's cancel by the `grpc-timeout` it was sent with.
@Suite("gRPC deadlines")
struct GRPCDeadlineTests {
    @Test(arguments: [
        ("1500m", Duration.milliseconds(1500)), ("2S", .seconds(2)), ("1M", .seconds(60)), ("1H", .seconds(3600)),
        ("250000u", .milliseconds(250)), ("99999999n", .nanoseconds(99_999_999)),
    ])
    func grpcTimeoutsAreRead(text: String, duration: Duration) {
        #expect(GRPCDeadline.timeout(text) == duration)
    }

    @Test(arguments: ["", "5", "S", "123456789S", "-1S", "1.5S", "10x"])
    func malformedTimeoutsAreNone(text: String) {
        #expect(GRPCDeadline.timeout(text) == nil)
    }

    @Test func aCancellationAtTheDeadlineIsTheDeadlines() throws {
        let start = ContinuousClock.now
        let deadline = try #require(GRPCDeadline(["grpc-timeout": "1500m"], now: start))
        #expect(!deadline.hasPassed(at: start + .milliseconds(1000)))
        #expect(deadline.hasPassed(at: start + .milliseconds(1300)))
        #expect(deadline.hasPassed(at: start + .seconds(2)))
        #expect(GRPCDeadline([:], now: start) == nil)
    }
}
