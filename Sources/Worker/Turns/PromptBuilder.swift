import Shared

/// Builds the prompt of one turn: the system prompt (always kept), then at most
/// `maxHistory` of the newest stored messages, then the new user message.
struct PromptBuilder: Sendable {
    /// Sent in place of a user message when a session starts, so the model opens.
    static let openingCue = "[session-start] The learner just opened the session. Greet them briefly and ask your first question."

    var systemPrompt: String
    var maxHistory: Int

    func prompt(history: [ChatMessage], turn: TurnEnvelope) -> [PromptMessage] {
        var messages = [PromptMessage(role: .system, content: systemPrompt)]
        let kept = history.filter { $0.role != .system }.suffix(maxHistory)
        messages += kept.map { PromptMessage(role: $0.role, content: $0.content) }
        switch turn.kind {
        case .start: messages.append(PromptMessage(role: .user, content: Self.openingCue))
        case .message: messages.append(PromptMessage(role: .user, content: turn.content))
        }
        return messages
    }

    static let defaultSystemPrompt = """
        Você é um tutor paciente e encorajador. Responda em português, de forma clara e breve. \
        Faça uma pergunta de cada vez, adapte a dificuldade às respostas do aluno e corrija erros com gentileza.
        """
}
