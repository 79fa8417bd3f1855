import Foundation
import Testing

@testable import Shared

@Suite("Topic catalog file")
struct TopicCatalogFileTests {
    @Test func theExampleCatalogLoads() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config/topics.example.json")
        let topics = try TopicCatalogFile.load(path: url.standardizedFileURL.path)
        #expect(topics.count >= 3)
        #expect(topics.allSatisfy { !$0.title.isEmpty && !$0.learningObjectives.isEmpty })
        #expect(topics.allSatisfy { $0.courseID == nil || $0.courseTitle != nil })
    }

    @Test func aTopicTakesItsCourseTitle() throws {
        let json = #"{"courses":[{"id":7,"title":"Matemática"}],"topics":[{"id":1,"title":"Frações","course_id":7,"learning_objectives":["somar"]}]}"#
        let topics = try TopicCatalogFile.parse(Data(json.utf8))
        #expect(topics == [CatalogTopic(id: 1, title: "Frações", learningObjectives: ["somar"], courseID: 7, courseTitle: "Matemática")])
    }

    @Test(arguments: [
        (#"{"topics":[{"id":1}]}"#, "\"title\" is missing"),
        (#"{"topics":[{"id":"one","title":"x"}]}"#, "wrong type"),
        (#"{"topics":[{"id":1,"title":"a"},{"id":1,"title":"b"}]}"#, "lists topic 1 twice"),
        (#"{"topics":[{"id":1,"title":"  "}]}"#, "empty title"),
        (#"{"topics":[{"id":1,"title":"a","course_id":9}]}"#, "course 9, which is not in"),
        ("not json", "not valid JSON"),
    ])
    func problemsNameTheVariableAndTheCause(json: String, problem: String) {
        #expect {
            _ = try TopicCatalogFile.parse(Data(json.utf8))
        } throws: { error in
            let error = error as? ConfigurationError
            return error?.variable == "TOPICS_FILE" && error?.problem.contains(problem) == true
        }
    }

    @Test func aMissingFileIsAConfigurationError() {
        #expect(throws: ConfigurationError.self) { try TopicCatalogFile.load(path: "/nonexistent/topics.json") }
    }
}
