import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ParleySupport
import Shared
import Synchronization

/// HTTP for the provider clients: one request with a limit on the whole attempt,
/// and for streams an idle limit between chunks (a stalled stream is cut, not
/// left hanging). Bodies are bounded.
struct LLMTransport: Sendable {
    /// A finished response that was not a stream (an error status, or a whole body).
    struct Reply: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    let httpClient: HTTPClient
    /// The longest one attempt may take, headers and body included.
    let attemptTimeout: Duration
    /// The longest a stream may go without a byte (the first one included).
    let idleTimeout: Duration
    /// The pool's connections per host (`providerConnectionsPerHost`): with more
    /// requests than that under way, a wait for a connection is a wait behind this
    /// worker's own requests.
    var connectionsPerHost = 8
    var maxBodyBytes = 4 * 1024 * 1024
    /// This transport's requests under way (shared by its copies).
    private let underWay = RequestsUnderWay()

    func send(_ request: HTTPClientRequest) async throws(LLMError) -> Reply {
        let (client, timeout, limit) = (httpClient, attemptTimeout, maxBodyBytes)
        let count = underWay.begin()
        defer { underWay.end() }
        do {
            return try await withTimeout(timeout) {
                let response = try await client.execute(request, timeout: .init(timeout))
                return Reply(status: response.status, headers: response.headers, body: try await response.body.collect(upTo: limit))
            }
        } catch {
            throw Self.transportError(error, url: request.url, timeout: timeout, underWay: count, connectionsPerHost: connectionsPerHost)
        }
    }

    /// Streams a `text/event-stream` answer: on 200 the events go to `onEvents`, those
    /// of one network read together (a fast model's whole answer can be one read), and
    /// nil is returned; any other status returns the error reply for the caller to read.
    func stream(_ request: HTTPClientRequest, onEvents: @escaping @Sendable ([SSEEvent]) async throws -> Void) async throws(LLMError) -> Reply? {
        let (client, attemptTimeout, idleTimeout, limit) = (httpClient, self.attemptTimeout, self.idleTimeout, maxBodyBytes)
        let progress = StreamProgressClock()
        let count = underWay.begin()
        defer { underWay.end() }
        do {
            return try await withThrowingTaskGroup(of: Reply?.self) { group in
                group.addTask {
                    // The watchdog: ends the attempt when it stalls or runs too long.
                    let started = ContinuousClock.now
                    while true {
                        try await Task.sleep(for: min(idleTimeout, attemptTimeout) / 4)
                        if progress.idle >= idleTimeout { throw LLMError.stalled(idleTimeout) }
                        if started.duration(to: .now) >= attemptTimeout { throw TimeoutError(duration: attemptTimeout) }
                    }
                }
                group.addTask {
                    let response = try await client.execute(request, timeout: .init(attemptTimeout))
                    progress.touch()
                    guard response.status == .ok else {
                        return Reply(status: response.status, headers: response.headers, body: try await response.body.collect(upTo: limit))
                    }
                    var parser = SSEParser()
                    for try await buffer in response.body {
                        progress.touch()
                        let events = try parser.feed(buffer.readableBytesView)
                        if !events.isEmpty { try await onEvents(events) }
                    }
                    if let last = parser.finish() { try await onEvents([last]) }
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
        } catch {
            throw Self.transportError(error, url: request.url, timeout: attemptTimeout, underWay: count, connectionsPerHost: connectionsPerHost)
        }
    }

    /// `underWay`: this transport's requests under way when the failed one began, itself included.
    static func transportError(_ error: any Error, url: String, timeout: Duration, underWay: Int, connectionsPerHost: Int) -> LLMError {
        if Task.isCancelled || error is CancellationError { return .cancelled }
        switch error {
        case let error as LLMError: return error
        case is TimeoutError: return .unavailable("no complete answer from \(url) within \(timeout)")
        case is SSEParser.LineTooLong: return .malformedResponse("an event-stream line or event from \(url) is too long")
        case let error as NIOTooManyBytesError: return .malformedResponse("the answer from \(url) is too large: \(error)")
        case let error as HTTPClientError where error == .getConnectionFromPoolTimeout:
            // Every connection busy with this worker's own requests: a local wait, not
            // the provider's failure. Otherwise the connection being opened for it did
            // not come in time: the provider (or the way to it) is failing.
            if underWay > connectionsPerHost {
                return .noLocalConnection("waited for a pooled connection to \(url) past the connect timeout")
            }
            return .unavailable("could not connect to \(url) within the connect timeout")
        default: return .unavailable("request to \(url) failed: \(error)")
        }
    }
}

/// How many requests of a transport are under way.
private final class RequestsUnderWay: Sendable {
    private let count = Atomic(0)

    /// Counts one more; returns the count with it.
    func begin() -> Int { count.add(1, ordering: .relaxed).newValue }
    func end() { count.subtract(1, ordering: .relaxed) }
}

/// When a stream last made progress.
private final class StreamProgressClock: Sendable {
    private let last = Mutex(ContinuousClock.now)

    func touch() { last.withLock { $0 = .now } }
    var idle: Duration { last.withLock { $0.duration(to: .now) } }
}

extension RetryHint {
    /// The hint of a response's headers.
    static func from(_ headers: HTTPHeaders, now: Date = Date()) -> Duration? {
        from(retryAfter: headers.first(name: "retry-after"), resetRequests: headers.first(name: "x-ratelimit-reset-requests"), now: now)
    }
}
