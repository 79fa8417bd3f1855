import Foundation

/// A process whose CPU time and memory a run reports (`--watch NAME=PID`).
struct WatchedProcess: Sendable {
    var name: String
    var pid: Int32
}

/// CPU time and resident memory of a process, read from /proc (Linux).
struct ProcessUsage: Sendable {
    /// User plus system CPU time, in seconds.
    var cpuSeconds: Double
    var residentBytes: Int

    /// This process's own usage.
    static func current() -> ProcessUsage? { read(pid: getpid()) }

    static func read(pid: Int32) -> ProcessUsage? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        else { return nil }
        // The command name (field 2) may hold spaces; the fields after it start after ')'.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let rssLine = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        let kibibytes = rssLine.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? 0
        return ProcessUsage(cpuSeconds: (user + system) / ticks, residentBytes: kibibytes * 1024)
    }
}
