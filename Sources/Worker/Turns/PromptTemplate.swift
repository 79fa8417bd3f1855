import Shared

/// Fills a prompt template's placeholders (`{topic_title}`, `{topic_description}`,
/// `{course_title}`, `{learning_objectives}`, `{user_level}`, `{completed_topics}`,
/// `{struggles}`, `{completion_marker}`). An unknown placeholder stays as written —
/// the completion marker itself looks like one, so only known names are replaced.
enum PromptTemplate {
    static func render(_ template: String, context: SessionContext, completionMarker: String) -> String {
        let values: [String: String] = [
            "topic_title": context.topicTitle.nonEmpty ?? "o tema da conversa",
            "topic_description": context.topicDescription.nonEmpty ?? "sem descrição",
            "course_title": context.courseTitle.nonEmpty ?? "curso livre",
            "learning_objectives": list(context.learningObjectives, empty: "compreender o tema"),
            "user_level": level(context.userLevel),
            "completed_topics": list(context.completedTopics, empty: "nenhum"),
            "struggles": list(context.struggles, empty: "nenhuma conhecida"),
            "completion_marker": completionMarker,
        ]
        var result = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            result += rest[..<open]
            let afterOpen = rest.index(after: open)
            guard let close = rest[afterOpen...].firstIndex(of: "}") else {
                rest = rest[open...]
                break
            }
            let name = rest[afterOpen..<close]
            if name.contains("{") {
                // `{{name}`: this brace is text; a placeholder may start at the next one.
                result += "{"
                rest = rest[afterOpen...]
                continue
            }
            result += values[String(name)] ?? String(rest[open...close])
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }

    /// The learner's level in Portuguese: beginner → iniciante, intermediate →
    /// intermediário, advanced → avançado; anything else as given, none → iniciante.
    static func level(_ level: String?) -> String {
        guard let level = level.nonEmpty else { return "iniciante" }
        switch level.lowercased() {
        case "beginner", "iniciante": return "iniciante"
        case "intermediate", "intermediário", "intermediario": return "intermediário"
        case "advanced", "avançado", "avancado": return "avançado"
        default: return level
        }
    }

    private static func list(_ items: [String], empty: String) -> String {
        let kept = items.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return kept.isEmpty ? empty : kept.joined(separator: "; ")
    }
}

extension Optional where Wrapped == String {
    fileprivate var nonEmpty: String? {
        guard let value = self?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }
}
