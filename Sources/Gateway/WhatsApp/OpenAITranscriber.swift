import AsyncHTTPClient
import Foundation
import NIOCore

/// `SpeechTranscriber` on an OpenAI-compatible `POST {base}/audio/transcriptions`
/// (multipart: `model` and `file`; the answer's `text`).
struct OpenAITranscriber: SpeechTranscriber {
    let client: HTTPClient
    let settings: WhatsAppSettings.TranscriptionSettings
    let timeout: Duration

    func transcribe(_ audio: [UInt8], mimeType: String) async throws(GraphError) -> String {
        let boundary = "parley-\(UUID().uuidString)"
        var request = HTTPClientRequest(url: "\(settings.baseURL)/audio/transcriptions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        if let key = settings.apiKey { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        request.body = .bytes(ByteBuffer(bytes: Self.form(audio, mimeType: mimeType, model: settings.model, boundary: boundary)))
        let body = try await HTTPExchange.run(request, client: client, timeout: timeout, limit: 1 << 20)
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any], let text = object["text"] as? String else {
            throw .rejected(status: 200, body: "the transcription's answer has no text")
        }
        return text
    }

    static func form(_ audio: [UInt8], mimeType: String, model: String, boundary: String) -> [UInt8] {
        // The type's parameters (`; codecs=opus`) stay out of the part's header.
        let type = mimeType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "application/octet-stream"
        let safeType = type.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "/.+-".contains($0)) } ? type : "application/octet-stream"
        let fileExtension = safeType.hasSuffix("/ogg") ? "ogg" : safeType.hasSuffix("/mpeg") ? "mp3" : safeType.hasSuffix("/mp4") ? "m4a" : "bin"
        var form: [UInt8] = []
        form += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n\(model)\r\n".utf8)
        form += Array(
            "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"voice.\(fileExtension)\"\r\nContent-Type: \(safeType)\r\n\r\n"
                .utf8
        )
        form += audio
        form += Array("\r\n--\(boundary)--\r\n".utf8)
        return form
    }
}
