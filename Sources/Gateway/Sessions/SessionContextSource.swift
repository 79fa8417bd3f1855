import Logging
import Shared

/// Where a new session's learner and topic context comes from.
protocol SessionContextSource: Sendable {
    /// The context for `userID` on `topicID` within `courseID`; an empty context for a
    /// free chat (no topic, no course).
    func context(userID: String, topicID: Int64?, courseID: Int64?) async throws(ClientError) -> SessionContext
}

/// Context from the upstream learning platform (`PLATFORM_API_URL`); its three reads
/// run at once, each with its own retries.
struct PlatformContextSource: SessionContextSource {
    let platform: any LearningPlatform
    let logger: Logger

    func context(userID: String, topicID: Int64?, courseID: Int64?) async throws(ClientError) -> SessionContext {
        guard topicID != nil || courseID != nil else { return SessionContext() }
        let platform = self.platform
        async let learner = Self.result { () async throws(PlatformError) in try await platform.learnerContext(userID: userID) }
        async let topic = Self.result { () async throws(PlatformError) -> PlatformTopic? in
            guard let topicID else { return nil }
            return try await platform.topic(id: topicID)
        }
        async let course = Self.result { () async throws(PlatformError) -> String? in
            guard let courseID else { return nil }
            return try await platform.courseTitle(userID: userID, courseID: courseID)
        }
        let (learnerResult, topicResult, courseResult) = await (learner, topic, course)
        if case .failure(.notFound) = topicResult, let topicID {
            throw ClientError(code: .topicNotFound, message: "the learning platform has no topic \(topicID)")
        }
        if case .failure(.notFound) = courseResult, let courseID {
            throw ClientError(code: .courseNotFound, message: "the learning platform has no course \(courseID) for this learner")
        }
        do {
            let (learnerContext, found, courseTitle) = (try learnerResult.get(), try topicResult.get(), try courseResult.get())
            return SessionContext(
                source: .platform,
                topicTitle: found?.title,
                topicDescription: found?.description,
                courseTitle: courseTitle,
                learningObjectives: found?.learningObjectives ?? [],
                userLevel: learnerContext.userLevel,
                completedTopics: learnerContext.completedTopics,
                struggles: learnerContext.struggles,
                promptTemplate: found?.promptTemplate
            )
        } catch {
            // The details (URLs, upstream bodies) are for the operator, not the client.
            let metadata: Logger.Metadata = [
                "user_id": "\(userID)", "topic_id": "\(topicID.map(String.init) ?? "-")", "course_id": "\(courseID.map(String.init) ?? "-")",
                "error": "\(error)",
            ]
            if case .rejected = error {
                logger.error("the learning platform refused a context read (check PLATFORM_API_KEY and PLATFORM_API_URL)", metadata: metadata)
            } else {
                logger.warning("the learning platform did not answer a context read", metadata: metadata)
            }
            throw ClientError(code: .platformUnavailable, message: "the learning platform did not answer; no session was started, try again")
        }
    }

    private static func result<T: Sendable>(_ body: () async throws(PlatformError) -> T) async -> Result<T, PlatformError> {
        do {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }
}

/// Context from the local topic catalog (`TOPICS_FILE`, loaded into the `topics`
/// table by the workers): the topic, its course, and the topics this learner has
/// completed in Parley. The learner's level is not known here.
struct CatalogContextSource: SessionContextSource {
    let catalog: any TopicCatalog
    let logger: Logger

    func context(userID: String, topicID: Int64?, courseID: Int64?) async throws(ClientError) -> SessionContext {
        guard topicID != nil || courseID != nil else { return SessionContext() }
        do {
            var topic: CatalogTopic?
            if let topicID {
                topic = try await catalog.topic(id: topicID)
                guard topic != nil else {
                    throw ClientError(code: .topicNotFound, message: "there is no topic \(topicID) in the topic catalog")
                }
            }
            var courseTitle = topic?.courseID == courseID ? topic?.courseTitle : nil
            if let courseID, courseTitle == nil {
                courseTitle = try await catalog.courseTitle(id: courseID)
                guard courseTitle != nil else {
                    throw ClientError(code: .courseNotFound, message: "there is no course \(courseID) in the topic catalog")
                }
            }
            return SessionContext(
                source: .catalog,
                topicTitle: topic?.title,
                topicDescription: topic?.description,
                courseTitle: courseTitle ?? topic?.courseTitle,
                learningObjectives: topic?.learningObjectives ?? [],
                completedTopics: try await catalog.completedTopicTitles(userID: userID),
                promptTemplate: topic?.promptTemplate
            )
        } catch let error as ClientError {
            throw error
        } catch {
            logger.warning("cannot read the topic catalog", metadata: ["user_id": "\(userID)", "error": "\(error)"])
            throw ClientError(code: .unavailable, message: "the database is unavailable; no session was started, try again shortly")
        }
    }
}
