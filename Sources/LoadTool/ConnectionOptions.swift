import ArgumentParser
import Foundation

/// Where the gateway is and who the clients are: shared by every command.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "The gateway's WebSocket URL.")
    var url = "ws://127.0.0.1:8080/ws"

    @Option(help: "A bearer token every client sends (an API key or a JWT).")
    var token: String?

    @Option(help: "Sign an HS256 JWT per client with this secret (the gateway's JWT_SECRET), so that every client is a user of its own.")
    var jwtSecret: String?

    @Option(help: "The user id of client n is <user-prefix>-<n> (with --jwt-secret).")
    var userPrefix = "load"

    @Option(help: "Event-loop threads of the tool.")
    var threads = 1

    func validate() throws {
        guard let parsed = URL(string: url), ["ws", "wss"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw ValidationError("--url must be a ws:// or wss:// URL, got \"\(url)\"")
        }
        if token != nil, jwtSecret != nil { throw ValidationError("--token and --jwt-secret exclude each other") }
        if let jwtSecret, jwtSecret.utf8.count < 32 { throw ValidationError("--jwt-secret must be at least 32 bytes, as the gateway's JWT_SECRET") }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be 1…64") }
    }

    /// The bearer token of client `index`, if any.
    func bearerToken(client index: Int) -> String? {
        if let token { return token }
        if let jwtSecret { return HS256Token.sign(subject: "\(userPrefix)-\(index)", secret: jwtSecret, lifetime: 86_400) }
        return nil
    }
}

/// Where the results go.
struct OutputOptions: ParsableArguments {
    @Option(help: "Write the result as JSON to this file.")
    var json: String?

    @Option(help: "A label for this run in the JSON result and the plot's title.")
    var label: String?

    @Option(help: "Report another process's CPU time and memory over the run: NAME=PID (repeatable).")
    var watch: [String] = []

    @Flag(help: "No live progress line.")
    var quiet = false

    func watchedProcesses() throws -> [WatchedProcess] {
        try watch.map { entry in
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let pid = Int32(parts[1]), pid > 0 else {
                throw ValidationError("--watch takes NAME=PID, got \"\(entry)\"")
            }
            return WatchedProcess(name: parts[0], pid: pid)
        }
    }
}
