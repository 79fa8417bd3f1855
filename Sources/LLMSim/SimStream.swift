import Hummingbird

/// The events of one streamed answer, when each is due (from the request's arrival),
/// and how the stream ends: normally, or with the connection cut.
struct SimStreamPlan: Sendable {
    struct Event: Sendable, Equatable {
        var at: Duration
        /// The event's data: a JSON text, `[DONE]`, or deliberately broken JSON.
        var data: String
    }

    /// How events are written on the wire.
    enum Framing: Sendable, Equatable {
        /// Server-sent events, `data: <data>` followed by two line breaks
        /// (`"\n"` for OpenAI, `"\r\n"` for Gemini).
        case sse(lineBreak: String)
        /// Gemini's `streamGenerateContent` without `alt=sse`: one JSON array written piece by piece.
        case jsonArray

        func encode(_ data: String, index: Int) -> String {
            switch self {
            case .sse(let lineBreak): "data: " + data + lineBreak + lineBreak
            case .jsonArray: (index == 0 ? "[" : ",\r\n") + data
            }
        }

        /// What ends a complete stream of `count` events.
        func closing(afterEvents count: Int) -> String {
            switch self {
            case .sse: ""
            case .jsonArray: count == 0 ? "[]" : "]"
            }
        }
    }

    var framing: Framing
    var events: [Event] = []
    /// When set, the connection is closed at this time instead of the stream ending.
    var cutAt: Duration?
    /// The first event that carries answer text, and what to call right after it is
    /// written (the first-token trace of `GET /sim/trace`).
    var firstTextEvent: Int?
    var onFirstText: (@Sendable () -> Void)?
    /// Called when the client goes away before the stream ended (e.g. a cancelled turn).
    var onClientGone: (@Sendable () -> Void)?

    /// The whole body as it goes on the wire when the stream is not cut (for tests).
    var wireText: String {
        wireText(of: events.indices) + (cutAt == nil ? framing.closing(afterEvents: events.count) : "")
    }

    /// Half of a JSON text: never valid JSON, for the `malformed=` fault.
    static func malformed(_ json: String) -> String {
        String(json.prefix(max(1, json.count / 2)))
    }

    /// A body that writes the events when they are due, every event due by then in
    /// one write (an instant answer is one write, not a timer and a write a token);
    /// a cut stream throws, which makes the server drop the connection without ending
    /// the response.
    func body(from start: ContinuousClock.Instant) -> ResponseBody {
        let plan = self
        return ResponseBody { writer in
            var next = 0
            while next < plan.events.count {
                let batch: Range<Int>
                do {
                    let due = start + plan.events[next].at
                    if due > .now { try await Task.sleep(until: due, clock: .continuous) }
                    try Task.checkCancellation()
                    batch = plan.dueEvents(from: next, by: ContinuousClock.now - start)
                    try await writer.write(ByteBuffer(string: plan.wireText(of: batch)))
                } catch {
                    plan.onClientGone?()
                    throw error
                }
                if let first = plan.firstTextEvent, batch.contains(first) { plan.onFirstText?() }
                next = batch.upperBound
            }
            if let cutAt = plan.cutAt {
                try await Task.sleep(until: start + cutAt, clock: .continuous)
                throw SimConnectionCut()
            }
            let closing = plan.framing.closing(afterEvents: plan.events.count)
            if !closing.isEmpty { try await writer.write(ByteBuffer(string: closing)) }
            try await writer.finish(nil)
        }
    }

    /// The events from `first` that are due `elapsed` after the request came: always
    /// `first` itself, then each later one already due.
    func dueEvents(from first: Int, by elapsed: Duration) -> Range<Int> {
        var end = first + 1
        while end < events.count, events[end].at <= elapsed { end += 1 }
        return first..<end
    }

    /// The wire text of some events, as one piece.
    func wireText(of batch: Range<Int>) -> String {
        batch.map { framing.encode(events[$0].data, index: $0) }.joined()
    }
}

extension SimStreamPlan {
    /// Records in `stats` when event `index` (the first with answer text) goes out.
    mutating func traceFirstText(at index: Int?, of conversation: [SimulatedTutor.Message], in stats: SimStats) {
        guard let index else { return }
        let message = conversation.last(where: { $0.role == "user" })?.content ?? ""
        firstTextEvent = index
        onFirstText = { stats.recordFirstText(of: message) }
        onClientGone = { stats.countClientGone() }
    }
}

/// Thrown from a response body to close the connection mid-response (the `cut=` fault).
struct SimConnectionCut: Error {}

extension ResponseBody {
    /// A body that never comes: the connection is closed after the head (non-streaming `cut=`).
    static var cut: ResponseBody {
        ResponseBody { _ in throw SimConnectionCut() }
    }
}
