/// What a user id may be, whether it comes from a token's `sub`, `API_KEYS` or
/// `?user=`: it is stored in the database and written to logs.
enum UserID {
    static let maxBytes = 256
    static let rule = "at most \(maxBytes) bytes without control characters"

    static func isValid(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= maxBytes && !id.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}
