import Foundation

/// The result as a person reads it at the end of a run.
struct LoadSummaryText {
    let result: LoadResult

    init(_ result: LoadResult) { self.result = result }

    var text: String {
        var lines: [String] = []
        let label = result.label.map { " — \($0)" } ?? ""
        lines.append("parley-load\(label): \(result.settings["clients"] ?? "?") clients, \(result.settings["pace"] ?? "")")
        lines.append(
            String(
                format: "  %.0f turns/s over %.0f s; %d turns sent, %d answered, %d sessions, %d sockets (%d failed)",
                result.turnsPerSecond,
                result.durationSeconds,
                result.turns,
                result.replies,
                result.sessions,
                result.connections,
                result.connectFailures
            )
        )
        for (name, latency) in [
            ("accepted", result.latencyMilliseconds.accepted), ("first delta", result.latencyMilliseconds.firstDelta),
            ("reply", result.latencyMilliseconds.reply),
        ] {
            guard let latency else { continue }
            lines.append(
                String(
                    format: "  %-12@ p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  max %8.2f ms",
                    name as NSString,
                    latency.p50,
                    latency.p95,
                    latency.p99,
                    latency.max
                )
            )
        }
        let errors = result.errors.merging(result.otherErrors) { $0 + $1 }
        lines.append(
            errors.isEmpty
                ? "  errors: none" : "  errors: " + errors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        )
        if result.unexpectedReplies > 0 {
            lines.append(
                "  unexpected replies (answered twice or not ours): \(result.unexpectedReplies), the first: \(result.firstUnexpectedReply ?? "?")"
            )
        }
        if let error = result.lastConnectError { lines.append("  last connect error: \(error)") }
        for process in result.processes {
            let perTurn = process.cpuMillisecondsPerTurn.map { String(format: "%.3f ms CPU/turn", $0) } ?? "–"
            lines.append(
                String(
                    format: "  %-14@ cpu %6.1f%%  %@  rss %.0f MiB (max %.0f)",
                    process.name as NSString,
                    process.cpuPercent,
                    perTurn as NSString,
                    process.residentMegabytes,
                    process.maxResidentMegabytes
                )
            )
        }
        return lines.joined(separator: "\n")
    }
}
