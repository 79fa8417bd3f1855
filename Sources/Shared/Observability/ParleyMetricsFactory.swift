import CoreMetrics
import Prometheus

/// The Prometheus factory, with Parley's help texts and buckets: a metric of
/// `ParleyMetrics` is registered with its help (so `/metrics` passes
/// `promtool check metrics`) and its buckets; any other metric goes to the plain
/// factory with its name made Prometheus-safe (`a.b` → `a_b`).
struct ParleyMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    private let plain: PrometheusMetricsFactory
    private let known: [String: ParleyMetric]

    init(registry: PrometheusCollectorRegistry, metrics: [ParleyMetric] = ParleyMetrics.all) {
        self.registry = registry
        var plain = PrometheusMetricsFactory(registry: registry)
        plain.nameAndLabelSanitizer = { name, labels in
            (Self.sanitized(name), labels.map { (Self.sanitized($0.0), $0.1) })
        }
        self.plain = plain
        self.known = Dictionary(metrics.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    static func sanitized(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" ? $0 : "_" })
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let metric = known[label] else { return plain.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: metric.descriptor, labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let metric = known[label] else { return plain.makeFloatingPointCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: metric.descriptor, labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard let metric = known[label] else { return plain.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate) }
        if aggregate {
            return registry.makeValueHistogram(descriptor: metric.descriptor, labels: dimensions, buckets: metric.buckets)
        }
        return registry.makeGauge(descriptor: metric.descriptor, labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let metric = known[label] else { return plain.makeMeter(label: label, dimensions: dimensions) }
        return registry.makeGauge(descriptor: metric.descriptor, labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let metric = known[label] else { return plain.makeTimer(label: label, dimensions: dimensions) }
        let buckets = metric.buckets.map { Duration.milliseconds(Int64(($0 * 1000).rounded())) }
        return registry.makeDurationHistogram(descriptor: metric.descriptor, labels: dimensions, buckets: buckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { plain.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { plain.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { plain.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { plain.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { plain.destroyTimer(handler) }
}

extension ParleyMetric {
    var descriptor: MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
