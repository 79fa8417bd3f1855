import Foundation

/// A JSON value whose objects keep their keys in order and whose nulls are written,
/// so the simulator's bodies match the providers' byte for byte (key order, explicit
/// `null`s, no escaped slashes), which `JSONEncoder` does not promise.
indirect enum SimJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([SimJSON])
    case object([Member])

    struct Member: Sendable, Equatable {
        var key: String
        var value: SimJSON
    }

    /// `.string(value)` or `.null`.
    static func optional(_ value: String?) -> SimJSON { value.map(SimJSON.string) ?? .null }

    /// The compact serialisation (no spaces, no newlines).
    var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .int(let value): out += String(value)
        case .string(let value): Self.writeString(value, to: &out)
        case .array(let values):
            out += "["
            for (index, value) in values.enumerated() {
                if index > 0 { out += "," }
                value.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, member) in members.enumerated() {
                if index > 0 { out += "," }
                Self.writeString(member.key, to: &out)
                out += ":"
                member.value.write(to: &out)
            }
            out += "}"
        }
    }

    fileprivate static func writeString(_ value: String, to out: inout String) {
        out += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

extension SimJSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByNilLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .int(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(nilLiteral: ()) { self = .null }
    init(arrayLiteral elements: SimJSON...) { self = .array(elements) }
    /// Keeps the literal's order.
    init(dictionaryLiteral elements: (String, SimJSON)...) {
        self = .object(elements.map { Member(key: $0.0, value: $0.1) })
    }
}

/// A serialisation with one string value left open: `text(with:)` writes any string in
/// its place, byte for byte what `SimJSON.text` writes for the whole value, without
/// building and walking the value again (a streamed answer's chunks differ only in
/// their token: the simulator spent most of its time per token doing that).
struct SimJSONTemplate: Sendable {
    private let head: String
    private let tail: String

    /// `make` builds the value from the string value it is given for the hole.
    init(_ make: (SimJSON) -> SimJSON) {
        // A hole no other part of the value can hold (they come from requests).
        let hole = "sim-hole-" + UUID().uuidString
        let text = make(.string(hole)).text
        let quoted = SimJSON.string(hole).text
        guard let range = text.range(of: quoted) else { preconditionFailure("the template's value does not hold its hole") }
        head = String(text[..<range.lowerBound])
        tail = String(text[range.upperBound...])
    }

    func text(with value: String) -> String {
        var out = head
        SimJSON.writeString(value, to: &out)
        out += tail
        return out
    }
}
