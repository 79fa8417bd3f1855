import Foundation
import Hummingbird
import Shared

/// Who is calling the REST API.
struct Principal: Sendable, Equatable {
    /// The user the token names; nil for an administrator key.
    var userID: String?
    /// An administrator key (`ADMIN_API_KEYS`), or authentication off.
    var isAdmin: Bool

    /// The user this request acts as: its own, never another's.
    func actingUser() throws(GatewayHTTPError) -> String {
        guard let userID else {
            throw GatewayHTTPError(
                status: .forbidden,
                code: .forbidden,
                message:
                    "an administrator key reads sessions and logs and may use /v1/chat; start sessions and send messages with the user's own token"
            )
        }
        return userID
    }

    /// May this caller read or act for `user`?
    func mayAccess(user: String) -> Bool {
        isAdmin || userID == user
    }
}

/// Reading a REST request: who sends it, its JSON body, its query parameters.
struct RESTRequestReader: Sendable {
    let authenticator: Authenticator
    let adminKeys: Set<String>
    let maxBodyBytes: Int
    let defaultWait: Duration
    let maxWait: Duration

    func principal(_ request: Request) async throws(GatewayHTTPError) -> Principal {
        // Administrator keys only in the header: a query string ends up in access logs.
        let headerToken = Authenticator.token(authorization: request.headers[.authorization], query: nil)
        if let headerToken, adminKeys.contains(headerToken) { return Principal(userID: nil, isAdmin: true) }
        let token = Authenticator.token(authorization: request.headers[.authorization], query: request.uri.query)
        do {
            let userID = try await authenticator.userID(token: token, requestedUser: Authenticator.queryValue("user", in: request.uri.query))
            if case .off = authenticator.mode { return Principal(userID: userID, isAdmin: true) }
            return Principal(userID: userID, isAdmin: false)
        } catch {
            throw GatewayHTTPError(error)
        }
    }

    /// The JSON body as `T`; an empty body decodes from `{}` when `emptyAllowed`.
    func body<T: RequestBody>(_ type: T.Type, of request: Request, emptyAllowed: Bool = false) async throws(GatewayHTTPError) -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBodyBytes)
        } catch let error as HTTPResponseError where error.status == .contentTooLarge {
            throw GatewayHTTPError(status: .contentTooLarge, code: .bodyTooLarge, message: "the request body is larger than \(maxBodyBytes) bytes")
        } catch {
            throw malformed("the request body could not be read")
        }
        var bytes = Array(buffer: buffer)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            guard emptyAllowed else { throw malformed("the request needs a JSON body") }
            bytes = Array("{}".utf8)
        }
        if let unknown = Self.unknownField(in: bytes, allowed: T.fields) {
            throw malformed("the body has an unknown field \"\(unknown)\" (it may have \(T.fields.map { "\"\($0)\"" }.joined(separator: ", ")))")
        }
        do {
            return try EnvelopeCoding.decode(T.self, from: bytes)
        } catch DecodingError.keyNotFound(let key, _) {
            throw malformed("the body needs \"\(key.stringValue)\"")
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            throw malformed("\"\(context.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type")
        } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
            throw malformed("\"\(context.codingPath.map(\.stringValue).joined(separator: "."))\" is malformed")
        } catch {
            throw malformed("the body is not valid JSON")
        }
    }

    /// The first key of a JSON object body that is not one of `allowed` (nil for
    /// anything that is not an object: decoding names that problem).
    private static func unknownField(in bytes: [UInt8], allowed: [String]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
        return object.keys.sorted().first { !allowed.contains($0) }.map { String($0.prefix(64)) }
    }

    func uuid(_ text: String?, name: String) throws(GatewayHTTPError) -> UUID {
        guard let text, let id = UUID(uuidString: text) else { throw malformed("\(name) must be a UUID") }
        return id
    }

    /// `?wait=` seconds (1 up to the gateway's reply timeout), else the default.
    func wait(_ request: Request) throws(GatewayHTTPError) -> Duration {
        guard let text = request.uri.queryParameters.get("wait") else { return defaultWait }
        let most = Int(maxWait.wholeMilliseconds / 1000)
        guard let seconds = Int(text), (1...most).contains(seconds) else { throw malformed("wait must be whole seconds from 1 to \(most)") }
        return .seconds(seconds)
    }

    /// `?limit=` from 1 to `most`, else `default`.
    func limit(_ request: Request, default defaultLimit: Int, most: Int) throws(GatewayHTTPError) -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return defaultLimit }
        guard let value = Int(text), (1...most).contains(value) else { throw malformed("limit must be a whole number from 1 to \(most)") }
        return value
    }

    /// `?limit=` (1…500) and `?cursor=` (from a previous page's `next_cursor`).
    func page(_ request: Request, defaultLimit: Int) throws(GatewayHTTPError) -> (limit: Int, cursor: Int64?) {
        let limit = try limit(request, default: defaultLimit, most: 500)
        guard let text = request.uri.queryParameters.get("cursor"), !text.isEmpty else { return (limit, nil) }
        guard let cursor = Int64(text), cursor >= 0 else { throw malformed("cursor is not one this API gave out; use next_cursor as it came") }
        return (limit, cursor)
    }

    func malformed(_ message: String) -> GatewayHTTPError {
        GatewayHTTPError(status: .badRequest, code: .malformedRequest, message: message)
    }
}

extension Response {
    /// A JSON response in Parley's JSON dialect.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: EnvelopeCoding.encode(value)))
        )
    }
}
