import Testing

@testable import Worker

@Suite("Prompt template")
struct PromptTemplateTests {
    static let full = TutorContext(
        topicTitle: "Frações", topicDescription: "Somar e comparar frações", courseTitle: "Matemática 5º ano",
        learningObjectives: ["somar frações", "comparar frações"], userLevel: "intermediate",
        completedTopics: ["Números naturais"], struggles: ["divisão"]
    )

    @Test(arguments: [
        ("Tema: {topic_title} ({topic_description})", "Tema: Frações (Somar e comparar frações)"),
        ("Curso {course_title}; objetivos: {learning_objectives}", "Curso Matemática 5º ano; objetivos: somar frações; comparar frações"),
        ("Nível {user_level}; já viu {completed_topics}; dificuldades: {struggles}", "Nível intermediário; já viu Números naturais; dificuldades: divisão"),
        ("Ao fim escreva {completion_marker}.", "Ao fim escreva {TOPIC_COMPLETED}."),
        ("Desconhecido {not_a_placeholder} fica.", "Desconhecido {not_a_placeholder} fica."),
        ("Chave aberta { sem fim", "Chave aberta { sem fim"),
        ("{{topic_title}}", "{Frações}"),
        ("", ""),
    ])
    func placeholdersAreFilled(template: String, expected: String) {
        #expect(PromptTemplate.render(template, context: Self.full, completionMarker: "{TOPIC_COMPLETED}") == expected)
    }

    @Test func missingValuesNeverBreakThePrompt() {
        let rendered = PromptTemplate.render(
            "{topic_title}|{topic_description}|{course_title}|{learning_objectives}|{user_level}|{completed_topics}|{struggles}",
            context: TutorContext(learningObjectives: ["  ", ""]), completionMarker: "{X}"
        )
        #expect(rendered == "o tema da conversa|sem descrição|curso livre|compreender o tema|iniciante|nenhum|nenhuma conhecida")
    }

    @Test(arguments: [
        ("beginner", "iniciante"), ("Intermediate", "intermediário"), ("ADVANCED", "avançado"), ("avançado", "avançado"),
        ("expert", "expert"), ("", "iniciante"),
    ])
    func levelsAreMappedToPortuguese(level: String, expected: String) {
        #expect(PromptTemplate.level(level) == expected)
    }

    @Test func theDefaultPromptAsksForTheMarker() {
        let builder = PromptBuilder(systemPrompt: PromptBuilder.defaultSystemPrompt, maxHistory: 5, completionMarker: "{FEITO}")
        let turn = TurnEnvelope(kind: .message, sessionID: .init(), userID: "u", content: "oi", gatewayID: "g")
        let system = builder.prompt(history: [], turn: turn, context: Self.full).first?.content ?? ""
        #expect(system.contains("{FEITO}"))
        #expect(system.contains("Frações") && system.contains("intermediário"))
        #expect(!system.contains("{completion_marker}") && !system.contains("{topic_title}"))
    }
}

import Shared
