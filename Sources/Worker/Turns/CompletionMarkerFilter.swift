import Foundation

/// Takes the completion marker (e.g. `{TOPIC_COMPLETED}`) out of streamed text, also
/// when the stream splits it across pieces: text that could be the start of the
/// marker is held back until the next piece shows whether it is.
struct CompletionMarkerFilter: Sendable {
    let marker: String
    /// Whether the marker appeared in the text so far.
    private(set) var found = false
    private var held = ""

    init(marker: String) {
        self.marker = marker
    }

    /// The part of `piece` (with what was held) that can be shown now.
    mutating func feed(_ piece: String) -> String {
        guard !marker.isEmpty else { return piece }
        var text = held + piece
        if text.contains(marker) {
            found = true
            text = text.replacingOccurrences(of: marker, with: "")
        }
        let keep = Self.longestSuffix(of: text, thatStarts: marker)
        held = String(text.suffix(keep))
        return String(text.dropLast(keep))
    }

    /// The stream ended: what was held was not the marker after all.
    mutating func finish() -> String {
        defer { held = "" }
        return held
    }

    /// The whole text without the marker, as the user sees it.
    func visible(_ text: String) -> String {
        guard !marker.isEmpty else { return text }
        return text.replacingOccurrences(of: marker, with: "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// How many characters at the end of `text` are a proper prefix of `marker`.
    private static func longestSuffix(of text: String, thatStarts marker: String) -> Int {
        var length = min(text.count, marker.count - 1)
        while length > 0 {
            if marker.hasPrefix(text.suffix(length)) { return length }
            length -= 1
        }
        return 0
    }
}
