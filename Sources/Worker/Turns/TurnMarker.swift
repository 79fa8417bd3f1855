/// The completion marker of one turn: the configured marker with a random suffix,
/// `{TOPIC_COMPLETED}` → `{TOPIC_COMPLETED_QXJRTMWA}`. Only that turn's system prompt
/// names it and only that turn's answer completes the session with it; no client ever
/// sees it (it is filtered from streams, replies and stored text), so a learner cannot
/// type it, or ask the model to repeat a marker they read in the documentation.
/// (docs/decisions.md, "Topic completion": what a prompt injection can still do.)
enum TurnMarker {
    static func make(from base: String) -> String {
        guard !base.isEmpty else { return "" }
        // Capital letters only: the marker stays one token of the `{WORD_WORD}` shape.
        let nonce = String((0..<8).map { _ in "ABCDEFGHIJKLMNOPQRSTUVWXYZ".randomElement()! })
        if base.hasSuffix("}") { return "\(base.dropLast())_\(nonce)}" }
        return "\(base)_\(nonce)"
    }
}
