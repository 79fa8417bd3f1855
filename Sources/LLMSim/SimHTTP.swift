import Foundation
import Hummingbird

/// Small HTTP helpers the endpoints share.
enum SimHTTP {
    /// `HTTPTypes.HTTPField`, reached through the `HTTPFields` Hummingbird exports.
    typealias Field = HTTPFields.Element

    /// The largest request body the simulator reads.
    static let maxRequestBytes = 16 * 1024 * 1024

    /// Header fields from name/value pairs (names that are not valid header names are skipped).
    static func fields(_ pairs: [(String, String)]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in pairs {
            if let name = Field.Name(name) { fields.append(Field(name: name, value: value)) }
        }
        return fields
    }

    /// The first value of header `name` (case-insensitive).
    static func header(_ name: String, in headers: HTTPFields) -> String? {
        let lowercased = name.lowercased()
        return headers.first { $0.name.canonicalName == lowercased }?.value
    }

    static func response(status: Int, contentType: String, text: String, headers: [(String, String)] = []) -> Response {
        Response(
            status: HTTPResponse.Status(code: status),
            headers: fields([("content-type", contentType)] + headers),
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    static func json(
        _ value: SimJSON,
        status: Int = 200,
        headers: [(String, String)] = [],
        contentType: String = "application/json"
    ) -> Response {
        response(status: status, contentType: contentType, text: value.text, headers: headers)
    }

    /// The request body, decoded as `T`, or nil when it is not such JSON.
    static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) -> T? {
        try? JSONDecoder().decode(type, from: Data(buffer.readableBytesView))
    }

    /// Waits until `offset` after `start` (at once if that has passed).
    static func wait(until offset: Duration, after start: ContinuousClock.Instant) async throws {
        try await Task.sleep(until: start + offset, clock: .continuous)
    }

    /// A random identifier of letters and digits, like the providers' response ids.
    static func randomID(length: Int) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }
}
