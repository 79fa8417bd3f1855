import Foundation
import Hummingbird

/// `POST /v1/audio/transcriptions` (OpenAI's speech to text, multipart `file` and
/// `model`): the tests' voice notes are text files, so a file of UTF-8 text is "heard"
/// as that text; any other file as a sentence naming its size. A file containing
/// `[sim:transcription-unavailable]` is answered 503, as a provider in trouble is.
struct TranscriptionEndpoint: Sendable {
    func respond(to request: Request) async throws -> Response {
        let bytes = Array(buffer: try await request.body.collect(upTo: SimHTTP.maxRequestBytes))
        guard SimHTTP.header("authorization", in: request.headers)?.lowercased().hasPrefix("bearer ") == true else {
            return error(401, OpenAIWire.missingKeyMessage)
        }
        guard let contentType = SimHTTP.header("content-type", in: request.headers),
            let boundary = Self.boundary(of: contentType),
            let file = Self.part(named: "file", in: bytes, boundary: boundary)
        else {
            return error(400, "the request must be multipart/form-data with a file part")
        }
        guard !file.isEmpty else { return error(400, "the audio file is empty") }
        let text = String(validating: file, as: UTF8.self)
        if let text, text.contains("[sim:transcription-unavailable]") { return error(503, "the transcription service is overloaded") }
        let heard = text?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "A voice note of \(file.count) bytes."
        return SimHTTP.json(.object([.init(key: "text", value: .string(heard))]))
    }

    private func error(_ status: Int, _ message: String) -> Response {
        SimHTTP.json(
            .object([
                .init(
                    key: "error",
                    value: .object([.init(key: "message", value: .string(message)), .init(key: "type", value: .string("invalid_request_error"))])
                )
            ]),
            status: status
        )
    }

    static func boundary(of contentType: String) -> String? {
        guard contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "boundary" { return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        return nil
    }

    /// The body of the part whose `Content-Disposition` names `name`.
    static func part(named name: String, in body: [UInt8], boundary: String) -> [UInt8]? {
        let delimiter = Array("--\(boundary)".utf8)
        let headerEnd = Array("\r\n\r\n".utf8)
        var starts: [Int] = []
        var index = 0
        while let found = find(delimiter, in: body, from: index) {
            starts.append(found)
            index = found + delimiter.count
        }
        for (start, end) in zip(starts, starts.dropFirst()) {
            let partStart = start + delimiter.count
            guard let headersEnd = find(headerEnd, in: body, from: partStart), headersEnd < end else { continue }
            let headers = String(decoding: body[partStart..<headersEnd], as: UTF8.self)
            guard headers.contains("name=\"\(name)\"") else { continue }
            // The part's body ends before the CRLF that precedes the next delimiter.
            let contentEnd = max(headersEnd + headerEnd.count, end - 2)
            return Array(body[(headersEnd + headerEnd.count)..<contentEnd])
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == needle[0], Array(haystack[index..<(index + needle.count)]) == needle { return index }
            index += 1
        }
        return nil
    }
}
