import ArgumentParser
import Foundation
import Logging
import NIOPosix

/// `parley-load turns`: clients that chat, in a closed loop (each waits for its answer)
/// or an open loop (turns at a target rate).
struct TurnsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "turns",
        abstract: "Clients that chat: send turns, wait for the answers, measure.",
        discussion: """
            Closed loop (default): every session sends its next turn as soon as the last \
            one is answered, after --think milliseconds. Open loop (--rate): turns are sent \
            at that total rate whether or not the earlier ones are answered, and each is \
            timed from when it was due.
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Clients: one socket each.")
    var clients = 10

    @Option(help: "Sessions each client starts on its socket.")
    var sessionsPerClient = 1

    @Option(help: "Seconds measured, after the warm-up.")
    var duration = 20.0

    @Option(help: "Seconds before measuring: sockets open, sessions start, caches warm.")
    var warmup = 3.0

    @Option(help: "Closed loop: milliseconds a session waits between its answer and its next turn.")
    var think = 0.0

    @Option(help: "Open loop: turns per second in all, spread over the clients.")
    var rate: Double?

    @Option(help: "The text of each turn.")
    var message = "hello there"

    @Option(help: "Pad each turn's text with spaces and letters to this many bytes.")
    var messageBytes: Int?

    @Option(help: "Directives for parley-llm-sim, appended as [sim:…] (e.g. ttft=2000,tps=50,tokens=100).")
    var sim: String?

    @Option(help: "Seconds to wait for the last answers after the run.")
    var drain = 15.0

    @Option(help: "New sockets per second while the clients connect.")
    var connectRate = 500.0

    func validate() throws {
        guard clients >= 1 else { throw ValidationError("--clients must be at least 1") }
        guard sessionsPerClient >= 1 else { throw ValidationError("--sessions-per-client must be at least 1") }
        guard duration > 0, warmup >= 0, drain >= 0, think >= 0 else {
            throw ValidationError("--duration must be positive; --warmup, --drain and --think not negative")
        }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        guard connectRate > 0 else { throw ValidationError("--connect-rate must be positive") }
        if let messageBytes, messageBytes < message.utf8.count {
            throw ValidationError("--message-bytes (\(messageBytes)) is shorter than --message (\(message.utf8.count) bytes)")
        }
    }

    func run() async throws {
        let watch = ProcessWatch(try output.watchedProcesses())
        let began = ContinuousClock.now
        let recorder = LoadRecorder(start: began)
        let stopAt = began + .seconds(warmup + duration)
        let pace: LoadPlan.Pace =
            if let rate { .open(turnsPerSecondPerClient: rate / Double(clients)) } else { .closed(think: .milliseconds(think)) }
        let plan = LoadPlan(
            url: connection.url,
            sessionsPerClient: sessionsPerClient,
            pace: pace,
            content: ClientFrameText.jsonString(content),
            began: began,
            stopAt: stopAt,
            drainUntil: stopAt + .seconds(drain)
        )
        let group = MultiThreadedEventLoopGroup(numberOfThreads: connection.threads)
        let logger = Logger(label: "parley-load")
        let progress = ProgressLine(recorder: recorder, watch: watch, quiet: output.quiet)
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await progress.run(until: plan.drainUntil) }
            tasks.addTask {
                try? await Task.sleep(until: began + .seconds(warmup))
                watch.startWindow()
                try? await Task.sleep(until: stopAt)
                watch.endWindow()
            }
            await withTaskGroup(of: Void.self) { clientTasks in
                let gap = Duration.seconds(1 / connectRate)
                for index in 0..<clients {
                    let client = LoadClient(
                        index: index,
                        plan: plan,
                        token: connection.bearerToken(client: index),
                        recorder: recorder,
                        eventLoopGroup: group,
                        logger: logger
                    )
                    clientTasks.addTask { await client.run() }
                    try? await Task.sleep(until: began + gap * index)
                }
            }
            tasks.cancelAll()
        }
        try? await group.shutdownGracefully()
        let result = summary(recorder: recorder, watch: watch)
        print(LoadSummaryText(result).text)
        if let path = output.json { try LoadResult.encoded(result).write(to: URL(fileURLWithPath: path)) }
    }

    private var content: String {
        var text = message
        if let messageBytes, messageBytes > text.utf8.count {
            let filler = " lorem ipsum dolor sit amet"
            while text.utf8.count < messageBytes { text += filler }
            text = String(decoding: text.utf8.prefix(messageBytes), as: UTF8.self)
        }
        if let sim { text += " [sim:\(sim)]" }
        return text
    }

    private var settings: [String: String] {
        var settings = [
            "url": connection.url,
            "clients": "\(clients)",
            "sessions_per_client": "\(sessionsPerClient)",
            "pace": rate.map { "open loop, \($0) turns/s" } ?? "closed loop, think \(think) ms",
            "message_bytes": "\(content.utf8.count)",
            "threads": "\(connection.threads)",
        ]
        if let sim { settings["sim"] = sim }
        return settings
    }

    private func summary(recorder: LoadRecorder, watch: ProcessWatch) -> LoadResult {
        let windowStart = Int64(warmup * 1_000_000)
        let windowEnd = Int64((warmup + duration) * 1_000_000)
        let turns = recorder.allTurns
        let measured = turns.filter { $0.sentAt >= windowStart && $0.sentAt < windowEnd }
        let replies = measured.filter { $0.errorCode == nil }
        let endedInWindow = turns.filter { $0.errorCode == nil && $0.finishedAt >= windowStart && $0.finishedAt < windowEnd }.count
        var errors: [String: Int] = [:]
        for turn in measured { if let code = turn.errorCode { errors[code, default: 0] += 1 } }
        let counts = recorder.counts
        return LoadResult(
            label: output.label,
            startedAt: ISO8601DateFormatter().string(from: Date()),
            settings: settings,
            warmupSeconds: warmup,
            durationSeconds: duration,
            turns: measured.count,
            replies: replies.count,
            turnsPerSecond: Double(endedInWindow) / duration,
            errors: errors,
            otherErrors: counts.otherErrors,
            unexpectedReplies: counts.unexpectedReplies,
            firstUnexpectedReply: recorder.firstUnexpectedReply,
            connections: counts.connected,
            connectFailures: counts.connectFailures,
            lastConnectError: recorder.lastConnectError,
            sessions: counts.sessions,
            deltasPerReply: replies.isEmpty ? nil : Double(replies.map(\.deltas).reduce(0, +)) / Double(replies.count),
            latencyMilliseconds: .init(
                accepted: Percentiles(microseconds: replies.compactMap(\.toAccepted)),
                firstDelta: Percentiles(microseconds: replies.compactMap(\.toFirstDelta)),
                reply: Percentiles(microseconds: replies.map(\.endToEnd))
            ),
            processes: watch.figures(turns: endedInWindow),
            series: LoadResult.series(turns)
        )
    }
}
