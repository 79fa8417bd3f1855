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
            return "Olá! Vamos começar. Em poucas palavras: o que você já sabe sobre este tema?"
        }
        let said = SimDirectives.stripped(from: last)
        let learnerMessages = userMessages.filter { !$0.content.contains(Self.openingCue) }.count
        return "Resposta \(learnerMessages): você disse \"\(said)\"."
    }
}
