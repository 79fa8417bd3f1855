import ParleySupport

/// Runs a database call with a time limit, mapping every failure to `StoreError`.
@discardableResult
public func storeCall<T: Sendable>(timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws(StoreError) -> T {
    do {
        return try await withTimeout(timeout, body)
    } catch {
        throw StoreError.wrapping(error)
    }
}
