import ParleySupport

/// What the user has been shown of a generation: the model's text without this turn's
/// marker, and without the public (configured) marker either — a model talked into
/// writing it completes nothing, and no client sees it.
final class ShownText: Sendable {
    private let markers: (turn: String, public: String)
    private let filters: Locked<(turn: CompletionMarkerFilter, public: CompletionMarkerFilter)>
    private let shown = Locked("")

    init(marker: String, publicMarker: String) {
        markers = (marker, publicMarker)
        filters = Locked((CompletionMarkerFilter(marker: marker), CompletionMarkerFilter(marker: publicMarker)))
    }

    var text: String { shown.value }

    func feed(_ piece: String) -> String {
        let visible = filters.withLock { filters in filters.public.feed(filters.turn.feed(piece)) }
        if !visible.isEmpty { shown.withLock { $0 += visible } }
        return visible
    }

    func reset() {
        filters.withLock { $0 = (CompletionMarkerFilter(marker: markers.turn), CompletionMarkerFilter(marker: markers.public)) }
        shown.withLock { $0 = "" }
    }

    func visible(_ raw: String) -> String {
        let filters = self.filters.value
        return filters.public.visible(filters.turn.visible(raw))
    }
}
