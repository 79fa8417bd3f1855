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
