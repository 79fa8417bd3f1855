import AsyncHTTPClient
import Hummingbird
import HummingbirdTesting
import NIOHTTP1
import Testing

@testable import Worker

@Suite("The providers' HTTP client")
struct ProviderHTTPClientTests {
    /// Issue 11: with AsyncHTTPClient's default pool (8 connections per host) a worker
    /// holding many turns at a slow model queued their requests until they failed with
    /// `getConnectionFromPoolTimeout`, counted as provider failures.
    @Test(.timeLimit(.minutes(1)))
    func everyTurnInFlightGetsAConnectionOfItsOwn() async throws {
        let router = Router()
        router.post("slow") { _, _ -> String in
            try await Task.sleep(for: .milliseconds(1500))
            return "ok"
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let url = "http://127.0.0.1:\(try #require(client.port))/slow"
            // 40 requests of 1.5 s at once and a wait for a connection of at most 1 s: in
            // a pool of 8 the other 32 would wait longer than that and fail.
            let http = providerHTTPClient(concurrency: 40, connectTimeout: .seconds(1))
            let outcomes = await withTaskGroup(of: String.self) { group in
                for _ in 0..<40 {
                    group.addTask {
                        var request = HTTPClientRequest(url: url)
                        request.method = .POST
                        do {
                            return "\(try await http.execute(request, timeout: .seconds(20)).status.code)"
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String]()) { $0.append($1) }
            }
            try await http.shutdown()
            #expect(outcomes == Array(repeating: "200", count: 40))
        }
    }
}

/// A pool timeout is a local wait only when this worker's own requests fill the pool;
/// otherwise the connection being opened did not come: the provider's failure, which
/// its breaker counts (the reviewer's case: a provider that stops completing handshakes
/// while earlier streams keep their connections).
@Suite("A wait for a pooled connection")
struct PoolTimeoutTests {
    func classified(underWay: Int) -> LLMError {
        LLMTransport.transportError(
            HTTPClientError.getConnectionFromPoolTimeout,
            url: "https://api.example/v1",
            timeout: .seconds(60),
            underWay: underWay,
            connectionsPerHost: 20
        )
    }

    @Test func behindTheWorkersOwnRequestsItIsLocal() {
        guard case .noLocalConnection = classified(underWay: 21) else {
            Issue.record("expected noLocalConnection, got \(classified(underWay: 21))")
            return
        }
        #expect(!classified(underWay: 21).countsAgainstProvider)
    }

    @Test func withConnectionsToSpareItIsTheProviders() {
        guard case .unavailable(let why) = classified(underWay: 5) else {
            Issue.record("expected unavailable, got \(classified(underWay: 5))")
            return
        }
        #expect(why.contains("could not connect"))
        #expect(classified(underWay: 5).countsAgainstProvider)
    }
}
