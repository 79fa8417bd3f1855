import Foundation
import Hummingbird
import Logging
import ParleySupport
import Shared

/// `parley-gateway`: WebSocket endpoint, `/health`, `/metrics`. Configuration
/// comes from the environment (see README).
@main
enum GatewayMain {
    static func main() async {
        let settings = settingsOrExit(of: "parley-gateway") { environment throws(ConfigurationError) in
            try GatewaySettings(environment: environment)
        }
        let onEventLoops = settings.concurrencyOnEventLoops && EventLoopExecutor.install()
        bootstrapObservability(logLevel: settings.logLevel)
        ParleyMetrics.registerGatewaySeries()
        let logger = Logger(label: "parley-gateway")
        if case .off = settings.authentication {
            logger.warning("authentication is OFF (PARLEY_AUTH=off): any client may act as any user; never do this in production")
        }
        logger.info(
            "starting",
            metadata: [
                "gateway_id": "\(settings.gatewayID)", "address": "\(settings.host):\(settings.port)",
                "broker": "\(settings.broker.redacted)", "database": "\(settings.database.redacted)",
                "tasks_on_event_loops": "\(onEventLoops)",
            ]
        )
        do {
            try await buildApplication(settings: settings, logger: logger).runService()
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
