// libFuzzer entry: any bytes as an LLM server's retry hints — the first line a
// `Retry-After`, the second an `x-ratelimit-reset-requests`, the whole a Gemini
// `retryDelay`. Every hint is absent or between zero and a day; none traps.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRetryHints(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    let lines = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    let hints = [
        RetryHint.from(retryAfter: lines.first, resetRequests: lines.count > 1 ? lines[1] : nil, now: Date(timeIntervalSince1970: 1_700_000_000)),
        RetryHint.goDuration(text),
        RetryHint.protobufDuration(text),
    ]
    for case let hint? in hints {
        precondition(hint >= .zero && hint <= .longestUntrusted, "a retry hint of \(hint)")
    }
    return 0
}
