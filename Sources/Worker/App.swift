import Foundation
import Logging
import ParleySupport
import Shared

/// `parley-worker`: consumes turns, calls the LLM, stores the conversation,
/// publishes replies. Configuration comes from the environment (see README).
/// `parley-worker migrate` only prepares the database and exits (`MigrateCommand`).
@main
enum WorkerMain {
    static func main() async {
        if CommandLine.arguments.dropFirst().first == "migrate" {
            exit(await MigrateCommand.run())
        }
        let settings = settingsOrExit(of: "parley-worker") { environment throws(ConfigurationError) in
            try WorkerSettings(environment: environment)
        }
        let onEventLoops = settings.concurrencyOnEventLoops && EventLoopExecutor.install()
        bootstrapObservability(logLevel: settings.logLevel)
        ParleyMetrics.registerWorkerSeries(providers: settings.configuredModels)
        let logger = Logger(label: "parley-worker")
        logger.info(
            "starting",
            metadata: [
                "worker_id": "\(settings.workerID)", "broker": "\(settings.broker.redacted)",
                "database": "\(settings.database.redacted)", "llm": "\(settings.providerSummary)", "streaming": "\(settings.streaming)",
                "concurrency": "\(settings.concurrency)", "http_port": "\(settings.httpPort)",
                "tasks_on_event_loops": "\(onEventLoops)",
            ]
        )
        if settings.sendsARealKeyToTheSimulator {
            logger.warning(
                "OPENAI_API_KEY is set but OPENAI_BASE_URL points at the simulator (llm-sim): set OPENAI_BASE_URL to use the real provider"
            )
        }
        do {
            try await buildWorker(settings: settings, logger: logger).run()
            logger.info("stopped")
        } catch let error as ConfigurationError {
            // A setting the servers refuse (DATABASE_URL): like a bad variable at start.
            logger.critical("stopped: \(error)")
            exit(2)
        } catch {
            logger.critical("stopped on an error", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
