/// Runs a process's health checks at most once per `maxAge` however often `/health`
/// is asked: concurrent requests share one run, and a public health endpoint cannot be
/// used to make the process ping its database in a loop.
public actor HealthMonitor {
    private let checks: [String: @Sendable () async -> String?]
    private let maxAge: Duration
    private var latest: (report: HealthReport, at: ContinuousClock.Instant)?
    private var running: Task<HealthReport, Never>?

    public init(maxAge: Duration = .seconds(1), checks: [String: @Sendable () async -> String?]) {
        self.checks = checks
        self.maxAge = maxAge
    }

    public func report() async -> HealthReport {
        if let latest, ContinuousClock.now - latest.at < maxAge { return latest.report }
        if let running { return await running.value }
        let checks = self.checks
        let task = Task { await HealthReport.collect(checks) }
        running = task
        let report = await task.value
        latest = (report, .now)
        running = nil
        return report
    }
}
