import Foundation
import Testing

@testable import Gateway
@testable import Shared

@Suite("Abuse limits")
struct AbuseLimitsTests {
    let start = ContinuousClock.now

    @Test func aBucketAllowsItsBurstThenRefillsAtItsRate() {
        var bucket = TokenBucket(capacity: 3, perMinute: 60, now: start)
        for _ in 0..<3 { #expect(bucket.take(now: start) == nil) }
        let wait = bucket.take(now: start)
        #expect(wait == .seconds(1), "\(String(describing: wait))")
        #expect(bucket.take(now: start.advanced(by: .milliseconds(500))) != nil)
        #expect(bucket.take(now: start.advanced(by: .milliseconds(1000))) == nil)
        #expect(!bucket.isFull(at: start.advanced(by: .seconds(1))))
        #expect(bucket.isFull(at: start.advanced(by: .seconds(4))))
    }

    @Test func aClockGoingBackDoesNotMintTokens() {
        var bucket = TokenBucket(capacity: 1, perMinute: 60, now: start.advanced(by: .seconds(10)))
        #expect(bucket.take(now: start.advanced(by: .seconds(10))) == nil)
        #expect(bucket.take(now: start) != nil)
    }

    @Test func keysAreLimitedApartAndTheTableIsBounded() {
        let limiter = RateLimiter(.init(perMinute: 60, burst: 1), maxKeys: 3)
        #expect(limiter.take("alice", now: start) == nil)
        #expect(limiter.take("alice", now: start) != nil)
        #expect(limiter.take("bob", now: start) == nil)
        #expect(limiter.take("carol", now: start) == nil)
        // Full of busy keys: a new key is refused rather than grow the table.
        #expect(limiter.take("dave", now: start) != nil)
        #expect(limiter.trackedKeys == 3)
        // Once buckets have refilled they are forgotten and make room.
        #expect(limiter.take("dave", now: start.advanced(by: .seconds(5))) == nil)
        #expect(limiter.trackedKeys == 1)
        #expect(RateLimiter(nil).take("anyone", now: start) == nil)
    }

    @Test func socketsAreCappedPerGatewayAndPerUser() {
        let admission = SocketAdmission(maxSockets: 3, maxPerUser: 2)
        #expect(admission.admit("alice") == nil)
        #expect(admission.admit("alice") == nil)
        #expect(admission.admit("alice") == .userFull(limit: 2))
        #expect(admission.admit("bob") == nil)
        #expect(admission.admit("carol") == .gatewayFull(limit: 3))
        admission.leave("alice")
        #expect(admission.admit("carol") == nil)
    }

    @Test func aRefusalSaysWhenToTryAgain() {
        let limiter = RateLimiter(.init(perMinute: 6, burst: 1))
        #expect(throws: Never.self) { try AbuseLimits.check(limiter, "alice", what: "messages") }
        #expect { try AbuseLimits.check(limiter, "alice", what: "messages") } throws: { error in
            let error = error as? ClientError
            return error?.code == .rateLimited && error?.retryAfter == 10
        }
    }

    @Test func limitsComeFromTheEnvironmentAndZeroTurnsOneOff() throws {
        let settings = try LimitSettings(environment: EnvironmentReader(["RATE_TURNS_PER_MINUTE": "0", "RATE_STARTS_BURST": "5"]))
        #expect(settings.turnsPerUser == nil)
        #expect(settings.startsPerUser == .init(perMinute: 30, burst: 5))
        #expect { try LimitSettings(environment: EnvironmentReader(["MAX_SOCKETS": "0"])) } throws: { error in
            (error as? ConfigurationError)?.variable == "MAX_SOCKETS"
        }
    }
}
