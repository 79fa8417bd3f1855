/// PostgreSQL `text` cannot hold U+0000 (SQLSTATE 22021). Clients are refused such
/// text at the gateway (`invalid_content`); text from network peers — a model's
/// answer, the learning platform's titles — is stored without it rather than refused.
extension String {
    var storable: String {
        unicodeScalars.contains("\u{0}") ? String(String.UnicodeScalarView(unicodeScalars.filter { $0 != "\u{0}" })) : self
    }
}

extension String? {
    var storable: String? { map(\.storable) }
}

extension CompletedTurn {
    var storable: CompletedTurn {
        var turn = self
        turn.userContent = userContent.storable
        turn.replyContent = replyContent.storable
        turn.rawReply = rawReply.storable
        turn.model = model.storable
        turn.provider = provider.storable
        turn.finishReason = finishReason.storable
        return turn
    }
}

extension SessionContext {
    var storable: SessionContext {
        var context = self
        context.topicTitle = topicTitle.storable
        context.topicDescription = topicDescription.storable
        context.courseTitle = courseTitle.storable
        context.learningObjectives = learningObjectives.map(\.storable)
        context.userLevel = userLevel.storable
        context.completedTopics = completedTopics.map(\.storable)
        context.struggles = struggles.map(\.storable)
        context.promptTemplate = promptTemplate.storable
        return context
    }
}
