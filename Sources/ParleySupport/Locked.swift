import Synchronization

/// A value behind a mutex that closures can share (a `Mutex` itself cannot be
/// captured by an escaping closure).
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: Value) {
        mutex = Mutex(value)
    }

    public func withLock<Result>(_ body: (inout sending Value) throws -> sending Result) rethrows -> sending Result {
        try mutex.withLock(body)
    }

    public var value: Value { mutex.withLock { $0 } }
}
