// libFuzzer entry: any bytes as a bearer token and as an identity provider's JWKS
// document. The token is parsed, its HS256 signature checked and its claims read;
// the key set is parsed and every key it keeps verifies the token. Nothing may trap,
// and a subject that passes is a valid user id.
import Crypto
import Foundation

let secret = SymmetricKey(data: Data(repeating: 0x2A, count: 32))
let rules = ClaimRules(issuer: "https://id.example", audience: "parley")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWT(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let text = String(decoding: bytes, as: UTF8.self)
    let token = try? JSONWebToken(parsing: text)
    if let token {
        _ = HS256JWT.isValid(token, key: secret)
        for now in [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 4_000_000_000)] {
            if let subject = (try? token.subject(checking: rules, now: now)) ?? (try? token.subject(checking: ClaimRules(), now: now)) {
                precondition(!subject.isEmpty && subject.utf8.count <= 256, "a bad subject passed")
                precondition(
                    !subject.unicodeScalars.contains { $0.properties.generalCategory == .control },
                    "a subject with control characters passed"
                )
            }
        }
    }
    if let keySet = try? JSONWebKeySet(parsing: bytes) {
        precondition(!keySet.keys.isEmpty && keySet.keys.count <= JSONWebKeySet.maxKeys, "a key set of \(keySet.keys.count) keys")
        if let token {
            for key in keySet.keys { _ = key.isValidSignature(of: token) }
        }
    }
    return 0
}
