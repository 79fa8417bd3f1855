import Foundation

extension UUID {
    /// Parley writes ids in lower case everywhere: routing keys, frames, logs.
    public var lowercased: String { uuidString.lowercased() }
}
