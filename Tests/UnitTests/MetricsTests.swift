import CoreMetrics
import Foundation
import Prometheus
import Testing

@testable import Shared

@Suite("Metrics")
struct MetricsTests {
    @Test func namesAreUniqueAndFollowPrometheusConventions() {
        let names = ParleyMetrics.all.map(\.name)
        #expect(Set(names).count == names.count)
        for metric in ParleyMetrics.all {
            #expect(metric.name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" }, "\(metric.name)")
            #expect(metric.name.hasPrefix("parley_"), "\(metric.name)")
            #expect(!metric.help.isEmpty, "\(metric.name)")
            switch metric.kind {
            case .counter: #expect(metric.name.hasSuffix("_total"), "\(metric.name)")
            case .histogram: #expect(metric.name.hasSuffix("_seconds") && !metric.buckets.isEmpty, "\(metric.name)")
            case .gauge: #expect(!metric.name.hasSuffix("_total"), "\(metric.name)")
            }
        }
    }

    @Test func everyParleyMetricIsExportedWithItsHelpAndType() {
        let registry = PrometheusCollectorRegistry()
        let factory = ParleyMetricsFactory(registry: registry)
        for metric in ParleyMetrics.all {
            switch metric.kind {
            case .counter: factory.makeCounter(label: metric.name, dimensions: [("kind", "x")]).increment(by: 1)
            case .gauge: factory.makeMeter(label: metric.name, dimensions: []).increment(by: 1)
            case .histogram: factory.makeTimer(label: metric.name, dimensions: []).recordNanoseconds(1_500_000_000)
            }
        }
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        for metric in ParleyMetrics.all {
            #expect(text.contains("# HELP \(metric.name) \(metric.help)"), "\(metric.name)")
            let type =
                switch metric.kind {
                case .counter: "counter"
                case .gauge: "gauge"
                case .histogram: "histogram"
                }
            #expect(text.contains("# TYPE \(metric.name) \(type)"), "\(metric.name)")
        }
        // A histogram's buckets are Parley's, in seconds: 1.5 s falls in le="2.5", not in le="1".
        #expect(text.contains(#"parley_gateway_turn_latency_seconds_bucket{le="2.5"} 1"#))
        #expect(
            text.contains(#"parley_gateway_turn_latency_seconds_bucket{le="1.0"} 0"#)
                || text.contains(#"parley_gateway_turn_latency_seconds_bucket{le="1"} 0"#)
        )
    }

    @Test func foreignMetricNamesAreMadePrometheusSafe() {
        let registry = PrometheusCollectorRegistry()
        let factory = ParleyMetricsFactory(registry: registry)
        factory.makeCounter(label: "hb.requests", dimensions: [("http.route", "/x")]).increment(by: 1)
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains(#"hb_requests{http_route="/x"} 1"#))
    }

    /// Label values come from fixed sets: an HTTP method or an error code a peer made up
    /// would otherwise grow the series without bound.
    @Test func labelValuesFromOutsideAreBounded() {
        let madeUp = #"{"v":1,"kind":"error","session_id":"\#(UUID())","turn_id":"\#(UUID())","code":"x\#(UUID())","message":"?"}"#
        let failure = try? EnvelopeCoding.decode(ReplyEnvelope.self, from: Data(madeUp.utf8))
        guard case .error(let read) = failure else {
            Issue.record("a failure with an unknown code was not read")
            return
        }
        #expect(read.code == .unavailable)
        #expect(ParleyMetrics.standardHTTPMethods.contains("GET"))
        #expect(!ParleyMetrics.standardHTTPMethods.contains("BREW"))
    }
}
