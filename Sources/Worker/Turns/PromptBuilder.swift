import Foundation
import Shared

/// Builds the prompt of one turn: the system prompt (always kept), then at most
/// `maxHistory` of the newest stored messages, then the new user message.
struct PromptBuilder: Sendable {
    /// Sent in place of a user message when a session starts, so the model opens.
    static let openingCue = "[session-start] The learner just opened the session. Greet them briefly and ask your first question."

    /// A template: `{completion_marker}`, `{topic_title}` and the other placeholders of
    /// `PromptTemplate` are filled for each turn.
    var systemPrompt: String
    var maxHistory: Int
    var completionMarker = Self.defaultCompletionMarker

    func prompt(history: [ChatMessage], turn: TurnEnvelope, context: TutorContext = TutorContext()) -> [PromptMessage] {
        let system = PromptTemplate.render(systemPrompt, context: context, completionMarker: completionMarker)
        var messages = [PromptMessage(role: .system, content: system)]
        let kept = history.filter { $0.role != .system }.suffix(maxHistory)
        messages += kept.map { PromptMessage(role: $0.role, content: $0.content) }
        switch turn.kind {
        case .start: messages.append(PromptMessage(role: .user, content: Self.openingCue))
        case .message: messages.append(PromptMessage(role: .user, content: turn.content))
        }
        return messages
    }

    static let defaultCompletionMarker = "{TOPIC_COMPLETED}"

    static let defaultSystemPrompt = """
        Você é um tutor paciente e encorajador de {topic_title}, para um aluno de nível {user_level}. \
        Responda em português, de forma clara e breve. \
        Faça perguntas progressivas, uma de cada vez, adapte a dificuldade às respostas do aluno e corrija erros com gentileza. \
        Quando o aluno tiver demonstrado domínio do tema, parabenize-o e escreva exatamente {completion_marker} no fim da sua resposta; \
        nunca escreva esse marcador antes disso.
        """
}
