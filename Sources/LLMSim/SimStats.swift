import Foundation
import Synchronization

/// Counts what the simulator served, so tests can prove whether a path called the LLM.
/// Every request to a model endpoint counts, whatever its answer (a 429 is a call too).
final class SimStats: Sendable {
    enum Kind: String, Sendable, CaseIterable {
        case openai
        case openaiStream = "openai_stream"
        case gemini
        case geminiStream = "gemini_stream"
    }

    private struct Counts {
        var byKind: [Kind: Int] = [:]
        var faults = 0
        /// Streams the client closed before they ended.
        var clientGone = 0
    }

    private let counts = Mutex(Counts())
    /// When the first answer text of recent streams was written: the last user message
    /// and the wall-clock time, newest last, at most `traceCapacity`.
    private let firstTexts = Mutex<[(message: String, at: Date)]>([])
    private let traceCapacity = 5000

    func recordFirstText(of message: String, at date: Date = Date()) {
        firstTexts.withLock { entries in
            entries.append((message, date))
            if entries.count > traceCapacity { entries.removeFirst(entries.count - traceCapacity) }
        }
    }

    /// When the newest stream whose last user message contains `needle` sent its first text.
    func firstText(containing needle: String) -> Date? {
        firstTexts.withLock { $0.last { $0.message.contains(needle) }?.at }
    }

    func count(_ kind: Kind) { counts.withLock { $0.byKind[kind, default: 0] += 1 } }
    func countFault() { counts.withLock { $0.faults += 1 } }
    func countClientGone() { counts.withLock { $0.clientGone += 1 } }
    func reset() {
        counts.withLock { $0 = Counts() }
        firstTexts.withLock { $0 = [] }
    }

    /// `{"openai":…,"openai_stream":…,"gemini":…,"gemini_stream":…,"faults":…,"requests":…,"chat_completions":…}`;
    /// `requests` is the total and `chat_completions` the OpenAI total (streaming or not).
    var snapshot: SimJSON {
        let counts = counts.withLock { $0 }
        let value = { (kind: Kind) in counts.byKind[kind, default: 0] }
        var members = Kind.allCases.map { SimJSON.Member(key: $0.rawValue, value: .int(value($0))) }
        members.append(.init(key: "faults", value: .int(counts.faults)))
        members.append(.init(key: "streams_closed_by_client", value: .int(counts.clientGone)))
        members.append(.init(key: "requests", value: .int(Kind.allCases.map(value).reduce(0, +))))
        members.append(.init(key: "chat_completions", value: .int(value(.openai) + value(.openaiStream))))
        return .object(members)
    }
}
