import Foundation
import Testing

@testable import Shared

/// `ErrorCode` and docs/protocol.md say the same: every code is documented, every
/// documented code exists, and the REST table's statuses are the codes' statuses.
@Suite("Error codes")
struct ErrorCodeTests {
    let protocolPage: String

    init() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "../../docs/protocol.md")
        protocolPage = try String(contentsOf: file, encoding: .utf8)
    }

    /// The rows of the table under `heading`: their cells, split at `|`.
    func rows(under heading: String) -> [[String]] {
        guard let start = protocolPage.range(of: "\n## \(heading)\n") else { return [] }
        let section = protocolPage[start.upperBound...].prefix { _ in true }
        var rows: [[String]] = []
        for line in section.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") { break }
            guard line.hasPrefix("|"), !line.hasPrefix("| ---") else { continue }
            rows.append(line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) })
        }
        return Array(rows.dropFirst())  // the header
    }

    /// The `code`s quoted in a cell, outside its (remarks).
    func codes(in cell: String) -> [String] {
        let outside = cell.replacing(/\([^)]*\)/, with: "")
        return outside.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    @Test func theErrorCodeTableListsEveryCodeAndNoOther() {
        let documented = rows(under: "Error codes").compactMap { codes(in: $0[0]).first }
        #expect(documented.count > 20)
        #expect(
            Set(documented) == Set(ErrorCode.allCases.map(\.rawValue)),
            "only in the page: \(Set(documented).subtracting(ErrorCode.allCases.map(\.rawValue))); not in the page: \(Set(ErrorCode.allCases.map(\.rawValue)).subtracting(documented))"
        )
    }

    @Test func theRESTStatusTableIsTheCodesStatuses() {
        var checked = 0
        for row in rows(under: "REST") where Int(row[0]) != nil {
            for code in codes(in: row[1]) {
                let matching =
                    code.hasSuffix("*")
                    ? ErrorCode.allCases.filter { $0.rawValue.hasPrefix(code.dropLast()) } : ErrorCode(rawValue: code).map { [$0] } ?? []
                #expect(!matching.isEmpty, "\(code) in the REST table is not a code")
                for errorCode in matching {
                    #expect(errorCode.httpStatus == Int(row[0]), "\(errorCode.rawValue): the page says \(row[0]), the code \(errorCode.httpStatus)")
                    checked += 1
                }
            }
        }
        #expect(checked > 15)
    }

    @Test func aCodeReadsAndWritesAsItsWireName() throws {
        let encoded = try JSONEncoder().encode([ErrorCode.llmRateLimited])
        #expect(String(decoding: encoded, as: UTF8.self) == #"["llm_rate_limited"]"#)
        #expect(
            try JSONDecoder().decode([ErrorCode].self, from: Data(#"["reply_timeout","from_a_newer_worker"]"#.utf8)) == [.replyTimeout, .unavailable]
        )
    }
}
