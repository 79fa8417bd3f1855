import Foundation

/// A process whose CPU time and memory a run reports (`--watch NAME=PID`).
struct WatchedProcess: Sendable {
    var name: String
    var pid: Int32
}

/// CPU time and resident memory of a process, read from /proc (Linux). The CPU time
/// is the process's and its descendants' (a PostgreSQL server's backends are children
/// of its postmaster), those that ended included; the resident size is its own.
struct ProcessUsage: Sendable {
    /// User plus system CPU time, in seconds.
    var cpuSeconds: Double
    var residentBytes: Int

    /// This process's own usage.
    static func current() -> ProcessUsage? { read(pid: getpid()) }

    static func read(pid: Int32) -> ProcessUsage? {
        guard let root = ProcessStat.read(pid: pid),
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let rssLine = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        let kibibytes = rssLine.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? 0
        let descendants = ProcessStat.descendants(of: pid)
        let clockTicks = descendants.reduce(root.ticksWithEndedChildren) { $0 + $1.ticksWithEndedChildren }
        return ProcessUsage(cpuSeconds: Double(clockTicks) / ticks, residentBytes: kibibytes * 1024)
    }
}

/// The fields of `/proc/PID/stat` a watch needs.
struct ProcessStat: Sendable {
    var pid: Int32
    var parent: Int32
    /// utime + stime + cutime + cstime: the process's CPU time and that of its ended
    /// children, which moves into these fields when a child is reaped, so a sum over a
    /// tree counts each tick once.
    var ticksWithEndedChildren: Int

    static func read(pid: Int32) -> ProcessStat? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return parse(stat)
    }

    /// Parses a stat line. The command name (field 2) may hold spaces and brackets;
    /// the fields after it start after its last ')'.
    static func parse(_ line: String) -> ProcessStat? {
        guard let close = line.lastIndex(of: ")"), let pid = Int32(line.prefix { $0 != " " }) else { return nil }
        let fields = line[line.index(after: close)...].split(separator: " ")
        // After the name: state (field 3), ppid (4), ... utime (14), stime (15), cutime (16), cstime (17).
        guard fields.count > 14, let parent = Int32(fields[1]) else { return nil }
        let times = fields[11...14].compactMap { Int($0) }
        guard times.count == 4 else { return nil }
        return ProcessStat(pid: pid, parent: parent, ticksWithEndedChildren: times.reduce(0, +))
    }

    /// Every live process below `pid`.
    static func descendants(of pid: Int32) -> [ProcessStat] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let all = entries.compactMap { Int32($0) }.compactMap { read(pid: $0) }
        let children = Dictionary(grouping: all, by: \.parent)
        var found: [ProcessStat] = []
        var pending = [pid]
        while let next = pending.popLast() {
            for child in children[next] ?? [] where child.pid != pid {
                found.append(child)
                pending.append(child.pid)
            }
        }
        return found
    }
}
