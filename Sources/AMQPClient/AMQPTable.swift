import CRabbitMQ
import Foundation

/// A value in an AMQP argument or header table (the kinds Parley uses).
public enum AMQPTableValue: Sendable, Hashable {
    case string(String)
    case int(Int64)
}

/// Builds and reads rabbitmq-c field tables. The C memory lives only for the
/// duration of `with`.
enum AMQPTable {
    static var empty: amqp_table_t { amqp_table_t(num_entries: 0, entries: nil) }

    static func with<R>(_ values: [String: AMQPTableValue], _ body: (amqp_table_t) -> R) -> R {
        guard !values.isEmpty else { return body(empty) }
        var cStrings: [UnsafeMutablePointer<CChar>] = []
        defer { for copy in cStrings { free(copy) } }
        func bytes(_ string: String) -> amqp_bytes_t {
            let copy = strdup(string)!
            cStrings.append(copy)
            return amqp_bytes_t(len: strlen(copy), bytes: UnsafeMutableRawPointer(copy))
        }
        var entries: [amqp_table_entry_t] = values.sorted { $0.key < $1.key }.map { key, value in
            var field = amqp_field_value_t()
            switch value {
            case .string(let text):
                field.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
                field.value.bytes = bytes(text)
            case .int(let number):
                field.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
                field.value.i64 = number
            }
            return amqp_table_entry_t(key: bytes(key), value: field)
        }
        return entries.withUnsafeMutableBufferPointer { buffer in
            body(amqp_table_t(num_entries: Int32(buffer.count), entries: buffer.baseAddress))
        }
    }

    /// The entries of a table rendered as strings (numbers in decimal); nested
    /// tables and arrays are left out.
    static func strings(in table: amqp_table_t) -> [String: String] {
        guard table.num_entries > 0, let entries = table.entries else { return [:] }
        var result: [String: String] = [:]
        for index in 0..<Int(table.num_entries) {
            let entry = entries[index]
            let key = String(amqpBytes: entry.key)
            let value = entry.value
            switch Int(value.kind) {
            case Int(AMQP_FIELD_KIND_UTF8.rawValue), Int(AMQP_FIELD_KIND_BYTES.rawValue):
                result[key] = String(amqpBytes: value.value.bytes)
            case Int(AMQP_FIELD_KIND_I8.rawValue): result[key] = String(value.value.i8)
            case Int(AMQP_FIELD_KIND_U8.rawValue): result[key] = String(value.value.u8)
            case Int(AMQP_FIELD_KIND_I16.rawValue): result[key] = String(value.value.i16)
            case Int(AMQP_FIELD_KIND_U16.rawValue): result[key] = String(value.value.u16)
            case Int(AMQP_FIELD_KIND_I32.rawValue): result[key] = String(value.value.i32)
            case Int(AMQP_FIELD_KIND_U32.rawValue): result[key] = String(value.value.u32)
            case Int(AMQP_FIELD_KIND_I64.rawValue): result[key] = String(value.value.i64)
            case Int(AMQP_FIELD_KIND_U64.rawValue), Int(AMQP_FIELD_KIND_TIMESTAMP.rawValue):
                result[key] = String(value.value.u64)
            default: continue
            }
        }
        return result
    }
}

/// Keeps Swift strings alive as `amqp_bytes_t` for the duration of `body`.
func withAMQPBytes<R>(_ a: String, _ body: (amqp_bytes_t) -> R) -> R {
    var a = a
    return a.withUTF8 { a in body(amqp_bytes_t(len: a.count, bytes: UnsafeMutableRawPointer(mutating: a.baseAddress))) }
}

func withAMQPBytes<R>(_ a: String, _ b: String, _ body: (amqp_bytes_t, amqp_bytes_t) -> R) -> R {
    withAMQPBytes(a) { a in withAMQPBytes(b) { b in body(a, b) } }
}

func withAMQPBytes<R>(
    _ a: String,
    _ b: String,
    _ c: String,
    _ body: (amqp_bytes_t, amqp_bytes_t, amqp_bytes_t) -> R
) -> R {
    withAMQPBytes(a) { a in withAMQPBytes(b) { b in withAMQPBytes(c) { c in body(a, b, c) } } }
}
