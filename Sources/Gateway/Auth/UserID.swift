/// What a user id may be, whether it comes from a token's `sub`, `API_KEYS` or
/// `?user=`: it is stored in the database and written to logs.
enum UserID {
    static let maxBytes = 256
    static let rule = "at most \(maxBytes) bytes without control characters"

    static func isValid(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= maxBytes && !id.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// User ids of people who reach Parley through a channel with no sign-in of its own
    /// (a WhatsApp number, the older bot's users): no token or API key names one, so
    /// that no sign-in reads or writes their conversations.
    static let channelPrefixes = ["whatsapp:", "bot:"]

    /// The channel prefix `id` starts with, if any.
    static func channelPrefix(of id: String) -> String? {
        channelPrefixes.first { id.hasPrefix($0) }
    }
}
