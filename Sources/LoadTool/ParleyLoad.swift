import ArgumentParser

/// `parley-load`: drives a Parley gateway over WebSocket as many people would, and
/// reports what they would see — time to `accepted`, to the first `delta`, to the
/// `reply`, turns per second and errors by code — with a live progress line, a JSON
/// result and the data for a plot (`scripts/plot-load.py`).
@main
struct ParleyLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley-load",
        abstract: "Load a Parley gateway over WebSocket and measure what its clients see.",
        subcommands: [TurnsCommand.self, SocketsCommand.self],
        defaultSubcommand: TurnsCommand.self
    )
}
