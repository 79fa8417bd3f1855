import ArgumentParser
import Foundation
import Logging
import NIOPosix

/// `parley-load sockets`: many idle sockets on one gateway — what they cost it — and
/// then one reply per session fanned out to every socket of that session.
struct SocketsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sockets",
        abstract: "Hold many idle sockets, then fan a reply out to every socket of each session.",
        discussion: """
            Opens --sockets sockets, --per-session of them on each session (the first \
            starts it, the others attach with resume), holds them idle for --hold seconds \
            while the watched processes' memory is read, then sends one turn on every \
            session at --rate turns/s and times its reply at each socket: the fan-out \
            time is the last socket's arrival minus the first's, and end to end is the \
            last arrival minus the send.
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Sockets in all.")
    var sockets = 10_000

    @Option(help: "Sockets on each session.")
    var perSession = 2

    @Option(help: "New sockets per second.")
    var connectRate = 1000.0

    @Option(help: "Seconds to hold the sockets idle before the turns.")
    var hold = 5.0

    @Option(help: "Turns per second in the fan-out phase (one per session).")
    var rate = 500.0

    @Option(help: "Seconds to wait for every reply to reach every socket.")
    var drain = 30.0

    func validate() throws {
        guard sockets >= 1, perSession >= 1, sockets % perSession == 0 else {
            throw ValidationError("--sockets must be a positive multiple of --per-session")
        }
        guard connectRate > 0, rate > 0, hold >= 0, drain > 0 else {
            throw ValidationError("rates and --drain must be positive, --hold not negative")
        }
    }

    func run() async throws {
        let watched = try output.watchedProcesses()
        let watch = ProcessWatch(watched)
        let before = Dictionary(uniqueKeysWithValues: watched.compactMap { p in ProcessUsage.read(pid: p.pid).map { (p.name, $0) } })
        let began = ContinuousClock.now
        let recorder = FanoutRecorder(start: began)
        let phases = FanoutGroup.Phases(turnsPerSecond: rate)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: connection.threads)
        let logger = Logger(label: "parley-load")
        let sessions = sockets / perSession
        var idle: [String: ProcessUsage] = [:]
        // The progress line is a child task beside the run, cancelled when the run ends.
        await withTaskGroup(of: Void.self) { progress in
            progress.addTask { await progressLines(recorder, sessions: sessions) }
            defer { progress.cancelAll() }
            await withTaskGroup(of: Void.self) { tasks in
                let gap = Duration.seconds(Double(perSession) / connectRate)
                for index in 0..<sessions {
                    let fanout = FanoutGroup(
                        index: index,
                        sockets: perSession,
                        url: connection.url,
                        token: connection.bearerToken(client: index),
                        recorder: recorder,
                        phases: phases,
                        eventLoopGroup: group,
                        logger: logger
                    )
                    tasks.addTask { await fanout.run() }
                    try? await Task.sleep(until: began + gap * index)
                }
                // Every socket open and attached (or failed), or a minute more at most.
                let openBy = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < openBy {
                    let counts = recorder.counts
                    if counts.listeners + counts.sessions + counts.failed >= sockets { break }
                    try? await Task.sleep(for: .milliseconds(200))
                }
                try? await Task.sleep(for: .seconds(hold))
                watch.sample()
                idle = Dictionary(uniqueKeysWithValues: watched.compactMap { p in ProcessUsage.read(pid: p.pid).map { (p.name, $0) } })
                watch.startWindow()
                phases.fanoutStart.withLock { $0 = .now }
                phases.fanout.fire()
                let drainBy = ContinuousClock.now + .seconds(Double(sessions) / rate + drain)
                while ContinuousClock.now < drainBy, recorder.complete(sockets: perSession) < recorder.counts.sessions {
                    try? await Task.sleep(for: .milliseconds(100))
                }
                watch.endWindow()
                phases.done.fire()
            }
        }
        try? await group.shutdownGracefully()
        let result = summary(recorder, watch: watch, before: before, idle: idle)
        print(result.text)
        if let path = output.json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(result).write(to: URL(fileURLWithPath: path))
        }
    }

    private func progressLines(_ recorder: FanoutRecorder, sessions: Int) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard !output.quiet else { continue }
            let counts = recorder.counts
            let line =
                "\(recorder.now() / 1_000_000)s  sockets \(counts.opened) (failed \(counts.failed))  sessions \(counts.sessions)/\(sessions)"
                + "  listeners \(counts.listeners)  fanned out \(recorder.complete(sockets: perSession))"
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    private func summary(
        _ recorder: FanoutRecorder,
        watch: ProcessWatch,
        before: [String: ProcessUsage],
        idle: [String: ProcessUsage]
    ) -> SocketsResult {
        let counts = recorder.counts
        let turns = recorder.turns.values
        let complete = turns.filter { $0.sentAt != nil && $0.arrivals.count >= perSession }
        let spread = complete.map { ($0.arrivals.max() ?? 0) - ($0.arrivals.min() ?? 0) }
        let endToEnd = complete.map { ($0.arrivals.max() ?? 0) - ($0.sentAt ?? 0) }
        let memory = idle.map { name, usage in
            let start = before[name]?.residentBytes ?? 0
            return SocketsResult.Memory(
                name: name,
                residentMegabytesBefore: Double(start) / 1_048_576,
                residentMegabytesIdle: Double(usage.residentBytes) / 1_048_576,
                kibibytesPerSocket: counts.opened > 0 ? Double(usage.residentBytes - start) / 1024 / Double(counts.opened) : nil
            )
        }
        return SocketsResult(
            label: output.label,
            sockets: sockets,
            perSession: perSession,
            opened: counts.opened,
            failed: counts.failed,
            lastFailure: counts.lastFailure,
            sessions: counts.sessions,
            listeners: counts.listeners,
            turnsSent: turns.filter { $0.sentAt != nil }.count,
            fannedOut: complete.count,
            errors: counts.errors,
            fanoutMilliseconds: Percentiles(microseconds: spread),
            endToEndMilliseconds: Percentiles(microseconds: endToEnd),
            memory: memory.sorted { $0.name < $1.name },
            processes: watch.figures(turns: complete.count)
        )
    }
}

/// What `parley-load sockets` measured.
struct SocketsResult: Codable, Sendable {
    struct Memory: Codable, Sendable {
        var name: String
        var residentMegabytesBefore: Double
        var residentMegabytesIdle: Double
        var kibibytesPerSocket: Double?
    }

    var tool = "parley-load sockets"
    var label: String?
    var sockets: Int
    var perSession: Int
    var opened: Int
    var failed: Int
    var lastFailure: String?
    var sessions: Int
    var listeners: Int
    var turnsSent: Int
    var fannedOut: Int
    var errors: [String: Int]
    /// The last socket's reply minus the first's, per session.
    var fanoutMilliseconds: Percentiles?
    /// The last socket's reply minus the turn's send, per session.
    var endToEndMilliseconds: Percentiles?
    var memory: [Memory]
    var processes: [LoadResult.ProcessFigures]

    var text: String {
        var lines = [
            "parley-load sockets\(label.map { " — \($0)" } ?? ""): \(opened) of \(sockets) sockets open (\(failed) failed), \(sessions) sessions, \(listeners) listeners attached"
        ]
        for entry in memory {
            let perSocket = entry.kibibytesPerSocket.map { String(format: ", %.1f KiB per socket", $0) } ?? ""
            lines.append(
                String(
                    format: "  %@: rss %.0f MiB before, %.0f MiB with the sockets idle",
                    entry.name as NSString,
                    entry.residentMegabytesBefore,
                    entry.residentMegabytesIdle
                ) + perSocket
            )
        }
        lines.append("  replies fanned out to all \(perSession) sockets: \(fannedOut) of \(turnsSent) turns")
        for (name, latency) in [("fan-out", fanoutMilliseconds), ("end to end", endToEndMilliseconds)] {
            guard let latency else { continue }
            lines.append(
                String(
                    format: "  %-11@ p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  max %8.2f ms",
                    name as NSString,
                    latency.p50,
                    latency.p95,
                    latency.p99,
                    latency.max
                )
            )
        }
        if !errors.isEmpty { lines.append("  errors: " + errors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) }
        if let lastFailure { lines.append("  last socket failure: \(lastFailure)") }
        return lines.joined(separator: "\n")
    }
}
