import Testing

@testable import Worker

@Suite("Completion marker filter")
struct CompletionMarkerFilterTests {
    static let marker = "{TOPIC_COMPLETED}"

    /// Streams `pieces` through a filter: (what was shown, whether the marker was found).
    func stream(_ pieces: [String]) -> (String, Bool) {
        var filter = CompletionMarkerFilter(marker: Self.marker)
        var shown = pieces.map { filter.feed($0) }.joined()
        shown += filter.finish()
        return (shown, filter.found)
    }

    @Test(arguments: [
        ("Muito bem! Você dominou o tema. {TOPIC_COMPLETED}", "Muito bem! Você dominou o tema. ", true),
        ("{TOPIC_COMPLETED} Parabéns!", " Parabéns!", true),
        ("Parabéns {TOPIC_COMPLETED}, você conseguiu.", "Parabéns , você conseguiu.", true),
        ("{TOPIC_COMPLETED}{TOPIC_COMPLETED}", "", true),
        ("Use chaves: {TOPIC} e {COMPLETED}.", "Use chaves: {TOPIC} e {COMPLETED}.", false),
        ("Termina com {TOPIC_COMP", "Termina com {TOPIC_COMP", false),
        ("sem marcador", "sem marcador", false),
    ])
    func theMarkerIsRemovedAndNoticed(text: String, shown: String, found: Bool) {
        #expect(stream([text]) == (shown, found))
    }

    @Test func theMarkerIsFoundWhereverTheStreamSplitsIt() {
        let text = "Ótimo trabalho! {TOPIC_COMPLETED} Até a próxima."
        let characters = Array(text)
        for cut in 0...characters.count {
            let (shown, found) = stream([String(characters[..<cut]), String(characters[cut...])])
            #expect(shown == "Ótimo trabalho!  Até a próxima.", "cut at \(cut)")
            #expect(found, "cut at \(cut)")
        }
        // One character at a time, too.
        #expect(stream(characters.map { String($0) }) == ("Ótimo trabalho!  Até a próxima.", true))
    }

    @Test func noPieceEverShowsPartOfTheMarker() {
        var filter = CompletionMarkerFilter(marker: Self.marker)
        for piece in ["Bom {", "TOPIC", "_COMP", "LETED}", " fim"] {
            let shown = filter.feed(piece)
            #expect(!shown.contains("{") && !shown.contains("TOPIC"), "\(piece) showed \(shown)")
        }
        #expect(filter.found)
    }

    @Test func theVisibleTextIsTrimmed() {
        let filter = CompletionMarkerFilter(marker: Self.marker)
        #expect(filter.visible("Parabéns!\n{TOPIC_COMPLETED}\n") == "Parabéns!")
    }
}
