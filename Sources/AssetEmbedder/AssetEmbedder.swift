import Foundation

/// Writes a Swift file that holds text files as string constants, so that a binary
/// carries its static assets (the OpenAPI document, the docs page) without a
/// resource bundle to install beside it. Run by the `EmbedAssets` build plugin:
///
///     AssetEmbedder OUTPUT.swift INPUT...
///
/// `openapi.json` becomes `EmbeddedAssets.openapiJSON`, `docs.html`
/// `EmbeddedAssets.docsHTML`.
@main
struct AssetEmbedder {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard let output = arguments.first, arguments.count > 1 else { fail("usage: AssetEmbedder OUTPUT.swift INPUT...") }
        var source = "// Generated at build time by AssetEmbedder (Plugins/EmbedAssets) from the files named below; do not edit.\n\n"
        source += "enum EmbeddedAssets {\n"
        var names: Set<String> = []
        for path in arguments.dropFirst().sorted() {
            let url = URL(fileURLWithPath: path)
            let text = try String(contentsOf: url, encoding: .utf8)
            let name = constantName(for: url)
            // A multi-line literal reads CRLF as LF: such a file would not be kept as is.
            guard !text.contains("\r"), name.first?.isLetter == true, names.insert(name).inserted else {
                fail("\(path): an asset must be LF-only text whose name starts with a letter and is not another's (constant \(name))")
            }
            source += "    /// \(url.lastPathComponent)\n"
            source += "    static let \(name) = \(rawStringLiteral(text))\n\n"
        }
        source += "}\n"
        try Data(source.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("AssetEmbedder: \(message)\n".utf8))
        exit(2)
    }

    /// `openapi.json` → `openapiJSON`, `chat-page.html` → `chatPageHTML`.
    static func constantName(for url: URL) -> String {
        let words = url.deletingPathExtension().lastPathComponent.split(whereSeparator: { !$0.isLetter && !$0.isNumber })
        let head = words.first.map { $0.prefix(1).lowercased() + $0.dropFirst() } ?? "asset"
        return head + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined() + url.pathExtension.uppercased()
    }

    /// A multi-line raw string literal with more `#` than the longest run of `#` in
    /// the text, so that nothing in it (`"#`, a backslash and `#`, `"""#`) can end the literal or
    /// start an escape: the text needs no escaping and is kept as it is.
    static func rawStringLiteral(_ text: String) -> String {
        var longest = 0
        var run = 0
        for character in text {
            run = character == "#" ? run + 1 : 0
            longest = max(longest, run)
        }
        let hashes = String(repeating: "#", count: longest + 1)
        let body = text.hasSuffix("\n") ? String(text.dropLast()) : text
        return "\(hashes)\"\"\"\n\(body)\n\"\"\"\(hashes)"
    }
}
