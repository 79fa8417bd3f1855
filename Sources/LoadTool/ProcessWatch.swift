import Foundation
import Synchronization

/// The watched processes (and the tool itself) over the measured window: CPU time at
/// its start and end, and the largest resident size seen.
final class ProcessWatch: Sendable {
    private struct Entry: Sendable {
        var process: WatchedProcess
        var atStart: ProcessUsage?
        var atEnd: ProcessUsage?
        var maxResident = 0
    }

    private let entries: Mutex<[Entry]>
    private let windowStart = Mutex<ContinuousClock.Instant?>(nil)
    private let windowEnd = Mutex<ContinuousClock.Instant?>(nil)

    init(_ processes: [WatchedProcess]) {
        let tool = WatchedProcess(name: "parley-load", pid: getpid())
        entries = Mutex((processes + [tool]).map { Entry(process: $0) })
    }

    func sample() {
        entries.withLock { entries in
            for index in entries.indices {
                if let usage = ProcessUsage.read(pid: entries[index].process.pid) {
                    entries[index].maxResident = max(entries[index].maxResident, usage.residentBytes)
                }
            }
        }
    }

    func startWindow() {
        windowStart.withLock { $0 = .now }
        entries.withLock { entries in
            for index in entries.indices { entries[index].atStart = ProcessUsage.read(pid: entries[index].process.pid) }
        }
    }

    func endWindow() {
        windowEnd.withLock { $0 = .now }
        entries.withLock { entries in
            for index in entries.indices { entries[index].atEnd = ProcessUsage.read(pid: entries[index].process.pid) }
        }
    }

    /// The figures of every process that could be read at both ends of the window.
    func figures(turns: Int) -> [LoadResult.ProcessFigures] {
        let start = windowStart.withLock { $0 }
        let end = windowEnd.withLock { $0 }
        let seconds = start.flatMap { start in end.map { start.duration(to: $0).seconds } } ?? 0
        return entries.withLock { entries in
            entries.compactMap { entry in
                guard let atStart = entry.atStart, let atEnd = entry.atEnd else { return nil }
                let cpu = atEnd.cpuSeconds - atStart.cpuSeconds
                return LoadResult.ProcessFigures(
                    name: entry.process.name,
                    pid: entry.process.pid,
                    cpuSeconds: cpu,
                    cpuMillisecondsPerTurn: turns > 0 ? cpu * 1000 / Double(turns) : nil,
                    cpuPercent: seconds > 0 ? cpu / seconds * 100 : 0,
                    residentMegabytes: Double(atEnd.residentBytes) / 1_048_576,
                    maxResidentMegabytes: Double(max(entry.maxResident, atEnd.residentBytes)) / 1_048_576
                )
            }
        }
    }
}

extension Duration {
    /// This duration in seconds, as a floating-point number.
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
