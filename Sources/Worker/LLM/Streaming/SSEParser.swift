/// One server-sent event (the `event`, `data` and `id` fields of the HTML standard).
struct SSEEvent: Sendable, Equatable {
    var event: String?
    var data: String
    var id: String?

    init(event: String? = nil, data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }
}

/// An incremental parser for `text/event-stream` (WHATWG HTML §9.2.6): feed it bytes
/// as they arrive, split anywhere, and it returns the events completed so far.
///
/// Lines end in LF, CR or CRLF (a CR at the end of one buffer and an LF at the start
/// of the next are one line end); `data` lines of one event are joined with LF;
/// lines starting with `:` are comments; an event is dispatched at a blank line, and
/// `finish()` dispatches a last event that the stream ended without one. A line
/// longer than `maxLineBytes`, or an event whose `data` lines add up to more than
/// `maxEventBytes` (a server that never sends the blank line), is an error, so a
/// broken server cannot grow memory without bound.
struct SSEParser: Sendable {
    struct LineTooLong: Error, Equatable {
        var limit: Int
    }

    let maxLineBytes: Int
    let maxEventBytes: Int
    private var line: [UInt8] = []
    private var afterCR = false
    private var dataLines: [String] = []
    private var dataBytes = 0
    private var sawData = false
    private var eventType: String?
    private var lastEventID: String?

    init(maxLineBytes: Int = 1 << 20, maxEventBytes: Int = 4 << 20) {
        self.maxLineBytes = maxLineBytes
        self.maxEventBytes = maxEventBytes
    }

    mutating func feed(_ bytes: some Sequence<UInt8>) throws(LineTooLong) -> [SSEEvent] {
        var events: [SSEEvent] = []
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\n") where afterCR:
                afterCR = false  // the LF of a CRLF: the line already ended at the CR
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                afterCR = byte == UInt8(ascii: "\r")
                if let event = endLine() { events.append(event) }
                guard dataBytes <= maxEventBytes else { throw LineTooLong(limit: maxEventBytes) }
            default:
                afterCR = false
                guard line.count < maxLineBytes else { throw LineTooLong(limit: maxLineBytes) }
                line.append(byte)
            }
        }
        return events
    }

    /// The stream ended: a pending line and event are completed as if a blank line followed.
    mutating func finish() -> SSEEvent? {
        var last: SSEEvent?
        if !line.isEmpty { last = endLine() }
        return last ?? endLine()
    }

    /// Processes the current line; returns an event when it was a blank line ending one.
    private mutating func endLine() -> SSEEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        guard !line.isEmpty else { return dispatch() }
        if line.first == UInt8(ascii: ":") { return nil }
        let field: Substring
        var value: Substring
        let text = String(decoding: line, as: UTF8.self)
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            value = text[text.index(after: colon)...]
            if value.first == " " { value = value.dropFirst() }
        } else {
            field = Substring(text)
            value = ""
        }
        switch field {
        case "data":
            dataLines.append(String(value))
            dataBytes += value.utf8.count + 1
            sawData = true
        case "event":
            eventType = String(value)
        case "id" where !value.contains("\0"):
            lastEventID = String(value)
        default:
            break  // `retry` and unknown fields are ignored
        }
        return nil
    }

    private mutating func dispatch() -> SSEEvent? {
        defer {
            dataLines = []
            dataBytes = 0
            sawData = false
            eventType = nil
        }
        guard sawData else { return nil }
        return SSEEvent(event: eventType, data: dataLines.joined(separator: "\n"), id: lastEventID)
    }
}
