// libFuzzer entry: any bytes as one WebSocket text frame. A frame is either decoded
// into a valid `ClientFrame` or refused with one of the codes docs/protocol.md lists;
// a decoded message's content is never empty, too long or holding a NUL.
import Foundation
import Shared

let decoder = ClientFrameDecoder(maxContentCharacters: 4000)
let refusals: Set<ErrorCode> = [.malformedFrame, .unknownType, .emptyContent, .contentTooLong, .invalidContent]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    do {
        if case .message(_, let content, _) = try decoder.decode(text) {
            precondition(
                !content.isEmpty && content.count <= 4000 && !content.unicodeScalars.contains("\u{0}"),
                "a bad content passed: \(content.debugDescription)"
            )
        }
    } catch {
        precondition(refusals.contains(error.code), "undocumented refusal \(error.code)")
        precondition(!error.message.isEmpty, "a refusal without a message")
    }
    return 0
}
