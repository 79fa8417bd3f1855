import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// A learning platform on a local port, as the tests need it: it answers the three
/// context reads from its tables, refuses the first `failures` requests of each kind
/// with 503, and records every completion it accepts.
final class FakePlatform: Sendable {
    /// JSON objects are plain values here; the mutex guards them.
    struct State: @unchecked Sendable {
        var contexts: [String: [String: Any]] = [:]
        var courses: [Int64: [String: Any]] = [:]
        var topics: [Int64: [String: Any]] = [:]
        var readFailuresLeft = 0
        var completionFailuresLeft = 0
        var reads = 0
        var completionCalls = 0
        var accepted: [[String: Any]] = []
        var idempotencyKeys: [String] = []
    }

    let state: Mutex<State>

    init(_ state: State = State()) {
        self.state = Mutex(state)
    }

    /// The `sessionId` of every completion accepted, in order.
    var acceptedSessions: [String] { state.withLock { $0.accepted.compactMap { $0["sessionId"] as? String } } }

    /// Runs `body` with the platform's base URL.
    func run(_ body: @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.get("/api/v1/userprogress/:user/context") { [self] _, context in
            respond(try context.parameters.require("user")) { $0.contexts[$1] }
        }
        router.get("/api/v1/userprogress/:user/course/:course") { [self] _, context in
            respond(Int64(try context.parameters.require("course")) ?? -1) { $0.courses[$1] }
        }
        router.get("/api/v1/trainingtopics/:id") { [self] _, context in
            respond(Int64(try context.parameters.require("id")) ?? -1) { $0.topics[$1] }
        }
        router.post("/api/v1/userprogress/complete-topic") { [self] request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            let key = request.headers[.init("Idempotency-Key")!] ?? ""
            let failed = state.withLock { state -> Bool in
                state.completionCalls += 1
                guard state.completionFailuresLeft == 0 else {
                    state.completionFailuresLeft -= 1
                    return true
                }
                let payload = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
                state.accepted.append(payload)
                state.idempotencyKeys.append(key)
                return false
            }
            return Response(status: failed ? .serviceUnavailable : .ok)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body("http://127.0.0.1:\(try #require(client.port))")
        }
    }

    private func respond<Key>(_ key: Key, _ lookup: (State, Key) -> [String: Any]?) -> Response {
        let (failed, data) = state.withLock { state -> (Bool, Data?) in
            state.reads += 1
            guard state.readFailuresLeft == 0 else {
                state.readFailuresLeft -= 1
                return (true, nil)
            }
            return (false, lookup(state, key).flatMap { try? JSONSerialization.data(withJSONObject: $0) })
        }
        if failed { return Response(status: .serviceUnavailable) }
        guard let data else { return Response(status: .notFound) }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: data)))
    }
}
