/// What `/health` answers: each dependency and whether it is reachable.
public struct HealthReport: Codable, Sendable {
    public struct Check: Codable, Sendable {
        public var ok: Bool
        public var detail: String?
    }

    public var status: String
    public var checks: [String: Check]

    public var isHealthy: Bool { status == "ok" }

    /// Runs the named checks; each returns nil when healthy, or what is wrong.
    public static func collect(_ checks: [String: @Sendable () async -> String?]) async -> HealthReport {
        var results: [String: Check] = [:]
        await withTaskGroup(of: (String, String?).self) { group in
            for (name, check) in checks {
                group.addTask { (name, await check()) }
            }
            for await (name, problem) in group {
                results[name] = Check(ok: problem == nil, detail: problem)
            }
        }
        let healthy = results.values.allSatisfy(\.ok)
        return HealthReport(status: healthy ? "ok" : "unavailable", checks: results)
    }
}
