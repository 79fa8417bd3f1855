import Synchronization
import Testing

@testable import Shared

@Suite("Health checks")
struct HealthMonitorTests {
    /// A public /health must not become a way to make the gateway ping its database in
    /// a loop: a burst of requests runs the checks once.
    @Test func aBurstOfRequestsRunsTheChecksOnce() async {
        let runs = Atomic<Int>(0)
        let monitor = HealthMonitor(
            maxAge: .seconds(60),
            checks: [
                "database": {
                    runs.add(1, ordering: .relaxed)
                    try? await Task.sleep(for: .milliseconds(50))
                    return "connection refused"
                }
            ]
        )
        let reports = await withTaskGroup(of: HealthReport.self) { group in
            for _ in 0..<100 { group.addTask { await monitor.report() } }
            return await group.reduce(into: [HealthReport]()) { $0.append($1) }
        }
        #expect(runs.load(ordering: .relaxed) == 1)
        #expect(reports.allSatisfy { $0.status == "unavailable" && $0.checks["database"]?.detail == "connection refused" })
    }

    @Test func anOldReportIsRunAgain() async throws {
        let runs = Atomic<Int>(0)
        let monitor = HealthMonitor(
            maxAge: .milliseconds(10),
            checks: [
                "x": {
                    runs.add(1, ordering: .relaxed)
                    return nil
                }
            ]
        )
        _ = await monitor.report()
        try await Task.sleep(for: .milliseconds(20))
        #expect(await monitor.report().isHealthy)
        #expect(runs.load(ordering: .relaxed) == 2)
    }
}
