import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus

/// Logging to standard error at `logLevel`, metrics into the Prometheus registry
/// that `/metrics` serves. Call once, first thing in `main`.
public func bootstrapObservability(logLevel: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = logLevel
        return handler
    }
    MetricsSystem.bootstrap(ParleyMetricsFactory(registry: PrometheusMetricsFactory.defaultRegistry))
}

/// `/metrics`: the Prometheus text format.
public func metricsResponse() -> Response {
    let bytes = PrometheusMetricsFactory.defaultRegistry.emitToBuffer()
    return Response(
        status: .ok,
        headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
        body: .init(byteBuffer: ByteBuffer(bytes: bytes))
    )
}

/// `/health`: 200 when every check passes, 503 otherwise; with the report of each
/// check when `detailed`, else only `{"status":…}` (what a public port may tell).
public func healthResponse(_ report: HealthReport, detailed: Bool = true) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data = (detailed ? try? encoder.encode(report) : try? encoder.encode(["status": report.status])) ?? Data()
    return Response(
        status: report.isHealthy ? .ok : .serviceUnavailable,
        headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: data))
    )
}
