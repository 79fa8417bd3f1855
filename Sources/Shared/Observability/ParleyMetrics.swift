import Metrics

/// One of Parley's metrics: its Prometheus name, the help text `/metrics` shows, and
/// for histograms their buckets.
public struct ParleyMetric: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case counter, gauge, histogram
    }

    public let name: String
    public let help: String
    public let kind: Kind
    /// Upper bounds of a histogram's buckets, in seconds.
    public let buckets: [Double]

    init(_ name: String, _ kind: Kind, _ help: String, buckets: [Double] = []) {
        self.name = name
        self.kind = kind
        self.help = help
        self.buckets = buckets
    }
}

/// Every metric Parley exports, defined once: names, labels (in the help text) and
/// buckets. Labels take values from small fixed sets — frame types, error codes,
/// outcomes, configured providers and models — never a session, turn or user id.
public enum ParleyMetrics {
    static let fast: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    static let slow: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300]

    // MARK: Gateway

    public static let wsConnections = ParleyMetric("parley_gateway_ws_connections", .gauge, "WebSocket connections open now.")
    public static let wsConnects = ParleyMetric("parley_gateway_ws_connects_total", .counter, "WebSocket connections accepted (authenticated).")
    public static let framesReceived = ParleyMetric(
        "parley_gateway_frames_received_total",
        .counter,
        "Client frames received, by type (start, message, resume, cancel, invalid)."
    )
    public static let framesRejected = ParleyMetric(
        "parley_gateway_frames_rejected_total",
        .counter,
        "Client frames refused with an error frame, by reason (the error code)."
    )
    public static let turnsPublished = ParleyMetric(
        "parley_gateway_turns_published_total",
        .counter,
        "Turns handed to the broker, by outcome (confirmed, refused, uncertain) and channel (web, websocket, rest, grpc, whatsapp)."
    )
    public static let repliesDelivered = ParleyMetric(
        "parley_gateway_replies_delivered_total",
        .counter,
        "Reply envelopes delivered to a session's sockets, by kind (delta, reset, done, error)."
    )
    /// The `method` label of the HTTP metrics takes only these; others are `other`.
    public static let standardHTTPMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    /// By `code`: an `ErrorCode`, so the label's values are a fixed set (a code a peer
    /// made up is read as `unavailable`).
    public static let turnErrors = ParleyMetric(
        "parley_gateway_turn_errors_total",
        .counter,
        "Turns that ended in an error for the client, by code (llm_*, reply_timeout, overloaded, ...)."
    )
    public static let turnLatency = ParleyMetric(
        "parley_gateway_turn_latency_seconds",
        .histogram,
        "End-to-end turn latency at the gateway: accepted by the broker to reply sent.",
        buckets: slow
    )
    public static let timeToFirstDelta = ParleyMetric(
        "parley_gateway_time_to_first_delta_seconds",
        .histogram,
        "Accepted by the broker to the first streamed delta sent.",
        buckets: slow
    )
    public static let httpRequests = ParleyMetric(
        "parley_http_requests_total",
        .counter,
        "HTTP requests answered, by route, method and status."
    )
    public static let httpDuration = ParleyMetric(
        "parley_http_request_duration_seconds",
        .histogram,
        "HTTP request duration, by route and method.",
        buckets: fast + [30, 60, 120]
    )

    // MARK: WhatsApp (gateway)

    public static let whatsappMessages = ParleyMetric(
        "parley_whatsapp_messages_total",
        .counter,
        "WhatsApp messages the webhook received, by kind (text, audio, unsupported) and outcome (stored, duplicate)."
    )
    public static let whatsappReplies = ParleyMetric(
        "parley_whatsapp_replies_total",
        .counter,
        "Reply parts posted to the Graph API, by outcome (sent, failed, refused)."
    )
    public static let whatsappStatuses = ParleyMetric(
        "parley_whatsapp_statuses_total",
        .counter,
        "Status callbacks the webhook received, by status (sent, delivered, read, failed, other)."
    )
    public static let whatsappBacklog = ParleyMetric(
        "parley_whatsapp_backlog",
        .gauge,
        "WhatsApp messages stored and not yet answered (every gateway samples the same table)."
    )

    // MARK: Worker

    public static let workerTurns = ParleyMetric(
        "parley_worker_turns_total",
        .counter,
        "Turn deliveries a worker settled, by outcome (answered, failed, cancelled, expired, dead_lettered, retried, superseded, duplicate)."
    )
    public static let workerTurnsInFlight = ParleyMetric("parley_worker_turns_in_flight", .gauge, "Turns this worker is working on now.")
    public static let workerTurnDuration = ParleyMetric(
        "parley_worker_turn_duration_seconds",
        .histogram,
        "Time a worker spent on a turn, delivery to ack.",
        buckets: slow
    )
    public static let llmRequestDuration = ParleyMetric(
        "parley_llm_request_duration_seconds",
        .histogram,
        "Duration of one LLM attempt, by provider, model and outcome (ok, error).",
        buckets: slow
    )
    public static let llmTimeToFirstToken = ParleyMetric(
        "parley_llm_time_to_first_token_seconds",
        .histogram,
        "Time to the first streamed token of an LLM attempt, by provider and model.",
        buckets: slow
    )
    public static let llmTokens = ParleyMetric(
        "parley_llm_tokens_total",
        .counter,
        "Tokens the LLM providers counted, by provider, model and kind (prompt, completion)."
    )
    public static let llmRetries = ParleyMetric("parley_llm_retries_total", .counter, "LLM attempts retried, by provider and model.")
    public static let llmFallbacks = ParleyMetric(
        "parley_llm_fallbacks_total",
        .counter,
        "Generations handed from one provider to the next, by from and to."
    )
    public static let llmErrors = ParleyMetric("parley_llm_errors_total", .counter, "Failed LLM attempts, by provider and code.")
    public static let topicCompletions = ParleyMetric("parley_topic_completions_total", .counter, "Sessions completed by the completion marker.")
    public static let outboxBacklog = ParleyMetric(
        "parley_outbox_backlog",
        .gauge,
        "Topic completions not yet delivered to the learning platform (every worker samples the same table)."
    )
    public static let outboxAttempts = ParleyMetric(
        "parley_outbox_delivery_attempts_total",
        .counter,
        "Completion deliveries tried, by outcome (delivered, duplicate, failed, refused)."
    )

    public static let all: [ParleyMetric] = [
        wsConnections, wsConnects, framesReceived, framesRejected, turnsPublished, repliesDelivered, turnErrors, turnLatency,
        timeToFirstDelta, httpRequests, httpDuration, workerTurns, workerTurnsInFlight, workerTurnDuration, llmRequestDuration,
        llmTimeToFirstToken, llmTokens, llmRetries, llmFallbacks, llmErrors, topicCompletions, outboxBacklog, outboxAttempts,
        whatsappMessages, whatsappReplies, whatsappStatuses, whatsappBacklog,
    ]
}

extension ParleyMetrics {
    /// Creates the gateway's series at zero, so that the first event of a counter
    /// counts in `rate()` and dashboards show 0 rather than no data.
    public static func registerGatewaySeries() {
        wsConnections.set(0)
        wsConnects.increment(by: 0)
        for type in ["start", "message", "resume", "cancel", "invalid"] { framesReceived.increment(by: 0, [("type", type)]) }
        for outcome in ["confirmed", "refused", "uncertain"] { turnsPublished.increment(by: 0, [("outcome", outcome)]) }
        for kind in ["delta", "reset", "done", "error"] { repliesDelivered.increment(by: 0, [("kind", kind)]) }
        _ = Timer(label: turnLatency.name)
        _ = Timer(label: timeToFirstDelta.name)
    }

    /// The WhatsApp channel's series at zero, on a gateway that serves it.
    public static func registerWhatsAppSeries() {
        for kind in ["text", "audio", "unsupported"] {
            for outcome in ["stored", "duplicate"] { whatsappMessages.increment(by: 0, [("kind", kind), ("outcome", outcome)]) }
        }
        for outcome in ["sent", "failed", "refused"] { whatsappReplies.increment(by: 0, [("outcome", outcome)]) }
        for status in ["sent", "delivered", "read", "failed", "other"] { whatsappStatuses.increment(by: 0, [("status", status)]) }
        whatsappBacklog.set(0)
    }

    /// Creates the worker's series at zero (see `registerGatewaySeries`), the LLM
    /// ones for each configured provider and model.
    public static func registerWorkerSeries(providers: [(provider: String, model: String)]) {
        for outcome in ["answered", "failed", "cancelled", "expired", "dead_lettered", "retried", "superseded", "duplicate"] {
            workerTurns.increment(by: 0, [("outcome", outcome)])
        }
        workerTurnsInFlight.set(0)
        _ = Timer(label: workerTurnDuration.name)
        topicCompletions.increment(by: 0)
        outboxBacklog.set(0)
        for outcome in ["delivered", "duplicate", "failed", "refused"] { outboxAttempts.increment(by: 0, [("outcome", outcome)]) }
        for (provider, model) in providers {
            let labels = [("provider", provider), ("model", model)]
            for kind in ["prompt", "completion"] { llmTokens.increment(by: 0, labels + [("kind", kind)]) }
            llmRetries.increment(by: 0, labels)
        }
    }
}

extension ParleyMetric {
    public func increment(by amount: Int = 1, _ dimensions: [(String, String)] = []) {
        Counter(label: name, dimensions: dimensions).increment(by: amount)
    }

    public func record(_ duration: Duration, _ dimensions: [(String, String)] = []) {
        Timer(label: name, dimensions: dimensions).record(duration: duration)
    }

    /// For a gauge: sets its value.
    public func set(_ value: Int, _ dimensions: [(String, String)] = []) {
        Gauge(label: name, dimensions: dimensions).record(value)
    }

    /// For a gauge that counts things in progress.
    public func meter(_ dimensions: [(String, String)] = []) -> Meter {
        Meter(label: name, dimensions: dimensions)
    }
}
