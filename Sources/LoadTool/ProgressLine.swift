import Foundation

/// The live line a run prints to stderr once a second.
struct ProgressLine: Sendable {
    let recorder: LoadRecorder
    let watch: ProcessWatch
    let quiet: Bool

    func run(until end: ContinuousClock.Instant) async {
        let interactive = isatty(STDERR_FILENO) == 1
        var lastCPU = ProcessUsage.current()?.cpuSeconds ?? 0
        var last = ContinuousClock.now
        while !Task.isCancelled, last < end {
            try? await Task.sleep(for: .seconds(1))
            watch.sample()
            let now = ContinuousClock.now
            let cpu = ProcessUsage.current()?.cpuSeconds ?? lastCPU
            let cpuPercent = (cpu - lastCPU) / last.duration(to: now).seconds * 100
            (last, lastCPU) = (now, cpu)
            guard !quiet else { continue }
            let line = text(cpuPercent: cpuPercent)
            FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[2K" + line : line + "\n").utf8))
        }
        if interactive, !quiet { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func text(cpuPercent: Double) -> String {
        let now = recorder.now()
        let recent = recorder.turns(finishedSince: now - 1_000_000)
        let replies = recent.filter { $0.errorCode == nil }
        let latency = Percentiles(microseconds: replies.map(\.endToEnd))
        let counts = recorder.counts
        let elapsed = String(format: "%4ds", now / 1_000_000)
        let latencyText = latency.map { String(format: "p50 %6.1f ms  p99 %6.1f ms", $0.p50, $0.p99) } ?? "p50      – ms  p99      – ms"
        return "\(elapsed)  \(String(format: "%5d", replies.count)) turns/s  \(latencyText)  in flight \(counts.sent - counts.finished)"
            + "  errors \(counts.errors + counts.otherErrors.values.reduce(0, +))  sockets \(counts.connected)"
            + String(format: "  tool cpu %3.0f%%", cpuPercent)
    }
}
