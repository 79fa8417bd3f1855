/// A deterministic tutor: the same conversation always gets the same reply, and
/// the reply depends on the conversation (how many turns, what was said last), so
/// tests can tell replies and their order apart.
struct SimulatedTutor: Sendable {
    struct Message: Sendable {
        var role: String
        var content: String
    }

    /// What the worker sends when a session starts and there is no user message yet.
    static let openingCue = "[session-start]"

    /// The opening cue is not something the learner said: it is not counted (Gemini
    /// clients put it first when a conversation would otherwise open with the model).
    func reply(to conversation: [Message]) -> String {
        let userMessages = conversation.filter { $0.role == "user" }
        let last = userMessages.last?.content ?? ""
        if userMessages.isEmpty || last.contains(Self.openingCue) {
            let topic = Self.topic(inCue: last).map { " sobre \($0)" } ?? ""
            return "Olá! Vamos começar\(topic). Em poucas palavras: o que você já sabe sobre este tema?"
        }
        let said = SimDirectives.stripped(from: last)
        if said.lowercased().contains("domino"), let marker = Self.completionMarker(in: conversation) {
            return "Parabéns! Você demonstrou domínio do tema. \(marker)"
        }
        let learnerMessages = userMessages.filter { !$0.content.contains(Self.openingCue) }.count
        return "Resposta \(learnerMessages): você disse \"\(said)\"."
    }

    /// The topic the worker's opening cue names ("… uma sessão sobre Frações. …"), if any.
    static func topic(inCue cue: String) -> String? {
        guard let start = cue.range(of: "sessão sobre ")?.upperBound,
            let end = cue[start...].range(of: ". ")?.lowerBound ?? cue[start...].lastIndex(of: ".")
        else { return nil }
        let topic = cue[start..<end].trimmingCharacters(in: .whitespaces)
        return topic.isEmpty || topic == "o tema da conversa" ? nil : topic
    }

    /// The completion protocol: when the system prompt names a marker such as
    /// `{TOPIC_COMPLETED}` and the learner says they master the topic ("eu domino …"),
    /// the tutor congratulates and writes the marker.
    static func completionMarker(in conversation: [Message]) -> String? {
        guard let system = conversation.first(where: { $0.role == "system" })?.content,
            let open = system.firstIndex(of: "{")
        else { return nil }
        var candidate = system[open...]
        while let close = candidate.firstIndex(of: "}") {
            let token = candidate[...close]
            if token.count > 2, token.dropFirst().dropLast().allSatisfy({ $0.isUppercase || $0 == "_" }) { return String(token) }
            guard let next = candidate[candidate.index(after: close)...].firstIndex(of: "{") else { return nil }
            candidate = candidate[next...]
        }
        return nil
    }
}
