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
        guard let output = arguments.first, arguments.count > 1 else {
            FileHandle.standardError.write(Data("usage: AssetEmbedder OUTPUT.swift INPUT...\n".utf8))
            exit(2)
        }
        var source = "// Generated at build time by AssetEmbedder (Plugins/EmbedAssets) from the files named below; do not edit.\n\n"
        source += "enum EmbeddedAssets {\n"
        for path in arguments.dropFirst().sorted() {
            let url = URL(fileURLWithPath: path)
            let text = try String(contentsOf: url, encoding: .utf8)
            source += "    /// \(url.lastPathComponent)\n"
            source += "    static let \(constantName(for: url)) = \(rawStringLiteral(text))\n\n"
        }
        source += "}\n"
        try Data(source.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
    }

    /// `openapi.json` → `openapiJSON`, `chat-page.html` → `chatPageHTML`.
    static func constantName(for url: URL) -> String {
        let words = url.deletingPathExtension().lastPathComponent.split(whereSeparator: { !$0.isLetter && !$0.isNumber })
        let head = words.first.map { $0.prefix(1).lowercased() + $0.dropFirst() } ?? "asset"
        return head + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined() + url.pathExtension.uppercased()
    }

    /// A multi-line raw string literal with more `#` than any `"#…` run in the text,
    /// so the text needs no escaping.
    static func rawStringLiteral(_ text: String) -> String {
        var longest = 0
        var run = -1
        for character in text {
            if character == "\"" {
                run = 0
            } else if character == "#", run >= 0 {
                run += 1
                longest = max(longest, run)
            } else {
                run = -1
            }
        }
        let hashes = String(repeating: "#", count: longest + 1)
        let body = text.hasSuffix("\n") ? String(text.dropLast()) : text
        return "\(hashes)\"\"\"\n\(body)\n\"\"\"\(hashes)"
    }
}
