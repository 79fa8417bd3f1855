import Foundation
import Testing

@testable import LoadTool

struct ProcessUsageTests {
    @Test func aStatLineIsReadPastANameWithSpacesAndBrackets() throws {
        let line = "4242 (postgres: parley (idle)) S 4000 4242 4242 0 -1 4194560 100 0 0 0 120 30 7 3 20 0 1 0 5 1000 200"
        let stat = try #require(ProcessStat.parse(line))
        #expect(stat.pid == 4242 && stat.parent == 4000)
        #expect(stat.ticksWithEndedChildren == 120 + 30 + 7 + 3)
    }

    @Test func aCutLineIsNoStat() {
        #expect(ProcessStat.parse("4242 (worker) S 1 2 3") == nil)
        #expect(ProcessStat.parse("") == nil)
    }

    @Test func aChildProcessIsCountedWithItsParent() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["5"]
        try child.run()
        defer { child.terminate() }
        let below = ProcessStat.descendants(of: getpid()).map(\.pid)
        #expect(below.contains(child.processIdentifier))
        #expect(!ProcessStat.descendants(of: child.processIdentifier).map(\.pid).contains(getpid()))
    }
}
