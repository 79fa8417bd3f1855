import Shared
import Testing

@testable import Worker

@Suite("Prompt template")
struct PromptTemplateTests {
    static let full = SessionContext(
        topicTitle: "Frações",
        topicDescription: "Somar e comparar frações",
        courseTitle: "Matemática 5º ano",
        learningObjectives: ["somar frações", "comparar frações"],
        userLevel: "intermediate",
        completedTopics: ["Números naturais"],
        struggles: ["divisão"]
    )

    @Test(arguments: [
        ("Tema: {topic_title} ({topic_description})", "Tema: Frações (Somar e comparar frações)"),
        ("Curso {course_title}; objetivos: {learning_objectives}", "Curso Matemática 5º ano; objetivos: somar frações; comparar frações"),
        (
            "Nível {user_level}; já viu {completed_topics}; dificuldades: {struggles}",
            "Nível intermediário; já viu Números naturais; dificuldades: divisão"
        ),
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
            context: SessionContext(learningObjectives: ["  ", ""]),
            completionMarker: "{X}"
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

@Suite("Prompt builder and session context")
struct PromptBuilderContextTests {
    let builder = PromptBuilder(systemPrompt: PromptBuilder.defaultSystemPrompt, maxHistory: 5, completionMarker: "{TOPIC_COMPLETED}")
    let start = TurnEnvelope(kind: .start, sessionID: .init(), userID: "u", content: "", gatewayID: "g")

    @Test func aTopicTemplateReplacesTheDefaultPrompt() {
        let context = SessionContext(topicTitle: "Frações", promptTemplate: "Ensine {topic_title}. Ao dominar, escreva {completion_marker}.")
        #expect(builder.systemMessage(context: context) == "Ensine Frações. Ao dominar, escreva {TOPIC_COMPLETED}.")
    }

    @Test func aTopicTemplateWithoutTheMarkerGetsTheInstructionAppended() {
        let context = SessionContext(source: .catalog, topicTitle: "Frações", promptTemplate: "Ensine {topic_title} com exemplos.")
        let system = builder.systemMessage(context: context)
        #expect(system.hasPrefix("Ensine Frações com exemplos.\n\n"))
        #expect(system.contains("escreva exatamente {TOPIC_COMPLETED}"))
    }

    @Test func aFreeChatKeepsAnOperatorsPromptAsWritten() {
        let operators = PromptBuilder(systemPrompt: "You are a helpful assistant.", maxHistory: 5)
        #expect(operators.systemMessage(context: SessionContext()) == "You are a helpful assistant.")
        #expect(operators.systemMessage(context: SessionContext(source: .platform, topicTitle: "x")).contains("{TOPIC_COMPLETED}"))
    }

    @Test(arguments: ["", "   \n"])
    func aBlankTopicTemplateMeansTheDefaultPrompt(template: String) {
        let context = SessionContext(topicTitle: "Frações", promptTemplate: template)
        #expect(builder.systemMessage(context: context) == builder.systemMessage(context: SessionContext(topicTitle: "Frações")))
        #expect(builder.systemMessage(context: context).hasPrefix("Você é um tutor paciente e encorajador de Frações"))
    }

    @Test func theOpeningNamesTheTopicAndIsRecognisable() {
        let prompt = builder.prompt(history: [], turn: start, context: SessionContext(topicTitle: "Frações"))
        let cue = prompt.last?.content ?? ""
        #expect(prompt.last?.role == .user)
        #expect(cue.hasPrefix(PromptBuilder.openingTag))
        #expect(cue.contains("sobre Frações"))
    }

    @Test func aFreeChatOpeningHasNeutralWording() {
        let cue = builder.prompt(history: [], turn: start).last?.content ?? ""
        #expect(cue.contains("sobre o tema da conversa"))
        #expect(!cue.contains("{"))
    }

    @Test func theDefaultPromptMentionsEveryKnownFact() {
        let context = SessionContext(
            topicTitle: "Frações",
            learningObjectives: ["somar"],
            userLevel: "advanced",
            completedTopics: ["Números"],
            struggles: ["divisão"]
        )
        let system = builder.systemMessage(context: context)
        for fact in ["Frações", "somar", "avançado", "Números", "divisão", "{TOPIC_COMPLETED}"] {
            #expect(system.contains(fact), "missing \(fact)")
        }
    }
}
