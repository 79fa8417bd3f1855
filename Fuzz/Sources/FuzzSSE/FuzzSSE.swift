// libFuzzer entry: any bytes as an LLM's server-sent event stream. The first byte
// picks where the stream is cut in two (as the network would); the events must be
// the same however the bytes arrive, a stream over the bounds must fail however it
// is cut, and no event may exceed the parser's bound.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSSE(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: start, count: count)
    guard let first = input.first else { return 0 }
    let bytes = Array(input.dropFirst())
    let cut = bytes.isEmpty ? 0 : Int(first) % (bytes.count + 1)
    let limits = (line: 256, event: 1024)
    let whole = events(of: [bytes[...]], limits)
    let split = events(of: [bytes[..<cut], bytes[cut...]], limits)
    // A stream over the bounds fails wherever it is cut; the events before the failure
    // do not count then (the worker abandons the answer).
    precondition(whole.tooLong == split.tooLong, "the bound depends on where the stream was cut (at \(cut))")
    precondition(whole.tooLong || whole.events == split.events, "events depend on where the stream was cut (at \(cut))")
    for event in whole.events {
        precondition(event.data.utf8.count <= limits.event + limits.line, "an event of \(event.data.utf8.count) bytes passed the bound")
    }
    return 0
}

private func events(of chunks: [ArraySlice<UInt8>], _ limits: (line: Int, event: Int)) -> (events: [SSEEvent], tooLong: Bool) {
    var parser = SSEParser(maxLineBytes: limits.line, maxEventBytes: limits.event)
    var events: [SSEEvent] = []
    do {
        for chunk in chunks { events += try parser.feed(chunk) }
    } catch {
        return (events, true)
    }
    if let last = parser.finish() { events.append(last) }
    return (events, false)
}
