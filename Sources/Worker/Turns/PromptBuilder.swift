import Foundation
import Shared

/// Builds the prompt of one turn: the system prompt (always kept), then at most
/// `maxHistory` of the newest stored messages, then the new user message.
struct PromptBuilder: Sendable {
    /// Begins the message sent in place of a user message when a session starts, so
    /// that the model opens (the simulator recognises it).
    static let openingTag = "[session-start]"
    /// The opening cue, a template like the system prompt.
    static let openingTemplate = """
        \(openingTag) O aluno acabou de abrir uma sessão sobre {topic_title}. \
        Cumprimente-o brevemente, apresente o tema em uma frase e faça a primeira pergunta.
        """
    /// Stands in for a user turn where a provider needs one before the tutor's opening.
    static let openingCue = "\(openingTag) O aluno abriu a sessão."

    /// A template: `{completion_marker}`, `{topic_title}` and the other placeholders of
    /// `PromptTemplate` are filled for each turn. A topic's own template replaces it.
    var systemPrompt: String
    var maxHistory: Int
    var completionMarker = Self.defaultCompletionMarker

    func prompt(history: [ChatMessage], turn: TurnEnvelope, context: SessionContext = SessionContext()) -> [PromptMessage] {
        var messages = [PromptMessage(role: .system, content: systemMessage(context: context))]
        let kept = history.filter { $0.role != .system }.suffix(maxHistory)
        messages += kept.map { PromptMessage(role: $0.role, content: $0.content) }
        switch turn.kind {
        case .start:
            let cue = PromptTemplate.render(Self.openingTemplate, context: context, completionMarker: completionMarker)
            messages.append(PromptMessage(role: .user, content: cue))
        case .message:
            messages.append(PromptMessage(role: .user, content: turn.content))
        }
        return messages
    }

    /// The topic's template, or the configured prompt. For a session on a topic, a
    /// template that does not mention `{completion_marker}` gets the marker
    /// instruction appended: without it the session could never complete. A free chat
    /// keeps an operator's prompt as written.
    func systemMessage(context: SessionContext) -> String {
        var template = context.promptTemplate?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if template.isEmpty { template = systemPrompt }
        if !completionMarker.isEmpty, context.source != .none, !template.contains("{completion_marker}") {
            template += "\n\n" + Self.markerInstruction
        }
        return PromptTemplate.render(template, context: context, completionMarker: completionMarker)
    }

    static let markerInstruction = """
        Quando o aluno tiver demonstrado domínio do tema, parabenize-o e escreva exatamente {completion_marker} no fim da sua resposta; \
        nunca escreva esse marcador antes disso.
        """

    static let defaultCompletionMarker = "{TOPIC_COMPLETED}"

    static let defaultSystemPrompt = """
        Você é um tutor paciente e encorajador de {topic_title}, para um aluno de nível {user_level}. \
        Responda em português, de forma clara e breve. \
        Objetivos: {learning_objectives}. Temas já concluídos: {completed_topics}. Dificuldades conhecidas: {struggles}. \
        Faça perguntas progressivas, uma de cada vez, adapte a dificuldade às respostas do aluno e corrija erros com gentileza.
        """ + " " + markerInstruction
}
