import Foundation

/// One of a user's sessions as a list shows it: what it is about and how it stands.
public struct SessionSummary: Sendable, Equatable {
    public var id: UUID
    public var status: SessionRecord.Status
    public var topicID: Int64?
    public var courseID: Int64?
    /// The topic's title from the session's context (nil for a free chat).
    public var topicTitle: String?
    /// The first thing the user wrote (nil before the first message).
    public var firstMessage: String?
    /// When it started, exactly as stored (microseconds since 1970).
    public var startedAtMicroseconds: Int64
    public var lastActivityAt: Date

    public var startedAt: Date { Date(timeIntervalSince1970: Double(startedAtMicroseconds) / 1_000_000) }
    /// The cursor of the page that starts below this session.
    public var cursor: SessionCursor { SessionCursor(startedAtMicroseconds: startedAtMicroseconds, id: id) }

    public init(
        id: UUID,
        status: SessionRecord.Status,
        topicID: Int64? = nil,
        courseID: Int64? = nil,
        topicTitle: String? = nil,
        firstMessage: String? = nil,
        startedAtMicroseconds: Int64,
        lastActivityAt: Date
    ) {
        self.id = id
        self.status = status
        self.topicID = topicID
        self.courseID = courseID
        self.topicTitle = topicTitle
        self.firstMessage = firstMessage
        self.startedAtMicroseconds = startedAtMicroseconds
        self.lastActivityAt = lastActivityAt
    }
}

/// Where a page of a user's sessions ends: the next page starts below it. Kept in
/// whole microseconds, PostgreSQL's resolution, so that no session at a page's edge
/// is shown twice or skipped by a rounding of `Date`.
public struct SessionCursor: Sendable, Equatable {
    public var startedAtMicroseconds: Int64
    public var id: UUID

    public init(startedAtMicroseconds: Int64, id: UUID) {
        self.startedAtMicroseconds = startedAtMicroseconds
        self.id = id
    }

    /// Above every session: the end of year 9999 and the largest id.
    public static let top = SessionCursor(
        startedAtMicroseconds: 253_402_300_799_000_000,
        id: UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))
    )

    /// `<microseconds since 1970>_<uuid>`: opaque to clients, exact to the row.
    public var text: String { "\(startedAtMicroseconds)_\(id.lowercased)" }

    public init?(text: String) {
        let parts = text.split(separator: "_", maxSplits: 1)
        // Within what PostgreSQL stores (and what `top` names): a larger one would make
        // the statement overflow its interval arithmetic.
        guard parts.count == 2, let micros = Int64(parts[0]), (0...Self.top.startedAtMicroseconds).contains(micros),
            let id = UUID(uuidString: String(parts[1]))
        else { return nil }
        self.init(startedAtMicroseconds: micros, id: id)
    }
}

/// The sessions a user has, for the chat page's list. `PostgresSessionDirectory` is
/// the real one.
public protocol SessionDirectory: Sendable {
    /// The user's sessions, newest first, below `before` (from the top when nil).
    func sessions(ofUser userID: String, before: SessionCursor?, limit: Int) async throws(StoreError) -> [SessionSummary]
    /// How many messages the user wrote in the session (its answered turns).
    func userMessageCount(session: UUID) async throws(StoreError) -> Int
}
