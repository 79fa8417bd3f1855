import Testing

@testable import Worker

@Suite("SSE parser")
struct SSEParserTests {
    /// Feeds `text` cut into pieces of `chunk` bytes and collects every event.
    func events(_ text: String, chunk: Int) throws -> [SSEEvent] {
        var parser = SSEParser()
        var result: [SSEEvent] = []
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(start + chunk, bytes.count)
            result += try parser.feed(bytes[start..<end])
            start = end
        }
        if let last = parser.finish() { result.append(last) }
        return result
    }

    @Test(arguments: [
        ("data: a\n\ndata: b\n\n", [SSEEvent(data: "a"), SSEEvent(data: "b")]),
        ("data: a\r\n\r\ndata: b\r\n\r\n", [SSEEvent(data: "a"), SSEEvent(data: "b")]),
        ("data: a\r\rdata: b\r\r", [SSEEvent(data: "a"), SSEEvent(data: "b")]),
        ("data: one\ndata: two\n\n", [SSEEvent(data: "one\ntwo")]),
        (": keep-alive\n\ndata: x\n\n", [SSEEvent(data: "x")]),
        ("event: delta\nid: 7\ndata: {\"a\":1}\n\n", [SSEEvent(event: "delta", data: "{\"a\":1}", id: "7")]),
        ("data:no-space\n\n", [SSEEvent(data: "no-space")]),
        ("data:  two spaces\n\n", [SSEEvent(data: " two spaces")]),
        ("data\n\n", [SSEEvent(data: "")]),
        ("retry: 100\nunknown: z\ndata: y\n\n", [SSEEvent(data: "y")]),
        ("event: ping\n\n", []),
        ("data: last without blank line", [SSEEvent(data: "last without blank line")]),
        ("data: last\n", [SSEEvent(data: "last")]),
        ("data: olá 🌍\n\n", [SSEEvent(data: "olá 🌍")]),
        ("data: [DONE]\n\n", [SSEEvent(data: "[DONE]")]),
    ])
    func eventsAreParsedWhereverTheStreamIsSplit(text: String, expected: [SSEEvent]) throws {
        for chunk in [1, 2, 3, 7, 1000] {
            #expect(try events(text, chunk: chunk) == expected, "chunk size \(chunk)")
        }
    }

    @Test func anOverlongLineIsAnError() {
        var parser = SSEParser(maxLineBytes: 8)
        #expect(throws: SSEParser.LineTooLong(limit: 8)) { try parser.feed(Array("data: 0123456789".utf8)) }
    }

    @Test func theLastEventIDCarriesOver() throws {
        let parsed = try events("id: 1\ndata: a\n\ndata: b\n\n", chunk: 4)
        #expect(parsed.map(\.id) == ["1", "1"])
    }

    /// A server that sends `data:` lines and never the blank line that ends the event
    /// must not grow the worker's memory without bound.
    @Test func dataLinesWithoutABlankLineAreBounded() throws {
        var parser = SSEParser(maxLineBytes: 64, maxEventBytes: 100)
        #expect(try parser.feed(Array(String(repeating: "data: 0123456789\n", count: 8).utf8)).isEmpty)
        #expect(throws: SSEParser.LineTooLong(limit: 100)) { try parser.feed(Array(String(repeating: "data: 0123456789\n", count: 4).utf8)) }
    }

    @Test func theEventBoundStartsAfreshWithEveryEvent() throws {
        var parser = SSEParser(maxLineBytes: 64, maxEventBytes: 100)
        for _ in 0..<50 {
            #expect(try parser.feed(Array("data: 0123456789\ndata: 0123456789\n\n".utf8)).count == 1)
        }
    }
}
