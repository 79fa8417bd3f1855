import Logging

/// Where an identity provider's key set comes from: its JWKS URL in the gateway, a
/// value in unit tests.
protocol KeySetSource: Sendable {
    func fetchKeySet() async throws(KeySetError) -> JSONWebKeySet
}

/// The identity provider's signing keys, fetched once and kept. They are fetched again
/// when they are older than `refreshAfter`, and when a token names a key id the set
/// does not hold (the provider rotated its keys) — but never more often than every
/// `minRefetchInterval`, so tokens with made-up `kid`s cannot make the gateway hammer
/// the provider. Concurrent lookups share one fetch. When a fetch fails the keys
/// already held stay in use.
actor JWKSKeyCache {
    struct Policy: Sendable, Equatable {
        var refreshAfter: Duration = .seconds(600)
        var minRefetchInterval: Duration = .seconds(30)
    }

    private let source: any KeySetSource
    private let policy: Policy
    private let now: @Sendable () -> ContinuousClock.Instant
    private let logger: Logger

    private var keySet: JSONWebKeySet?
    private var fetchedAt: ContinuousClock.Instant?
    private var lastAttempt: ContinuousClock.Instant?
    private var lastFailure: KeySetError?
    private var fetching: Task<Void, Never>?
    /// How many fetches were started; for tests and the log.
    private(set) var fetches = 0

    init(
        source: any KeySetSource,
        policy: Policy = Policy(),
        logger: Logger,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.source = source
        self.policy = policy
        self.logger = logger
        self.now = now
    }

    /// The key that verifies a token with this `kid` and `alg`.
    func key(id: String?, algorithm: String) async throws(AuthError) -> JSONWebKey {
        if isStale { await refetchIfAllowed() }
        if let key = keySet?.key(id: id, algorithm: algorithm) { return key }
        await refetchIfAllowed()
        guard let keySet else { throw .keysUnavailable(lastFailure?.description ?? "not fetched yet") }
        if let key = keySet.key(id: id, algorithm: algorithm) { return key }
        if let id { throw .invalidToken("the identity provider has no \(algorithm) key with kid \(Self.printable(id))") }
        throw .invalidToken("the token has no kid and the key set has several \(algorithm) keys")
    }

    private var isStale: Bool {
        guard let fetchedAt else { return true }
        return now() - fetchedAt >= policy.refreshAfter
    }

    private func refetchIfAllowed() async {
        if let fetching { return await fetching.value }
        if let lastAttempt, now() - lastAttempt < policy.minRefetchInterval { return }
        lastAttempt = now()
        fetches += 1
        let task = Task { await self.fetch() }
        fetching = task
        await task.value
    }

    private func fetch() async {
        defer { fetching = nil }
        do {
            let fresh = try await source.fetchKeySet()
            keySet = fresh
            fetchedAt = now()
            lastFailure = nil
            logger.info("identity provider keys fetched", metadata: ["jwks_keys": "\(fresh.keys.count)"])
        } catch {
            lastFailure = error
            logger.error(
                "identity provider keys could not be fetched; the keys held so far stay in use",
                metadata: ["error": "\(error)", "jwks_keys": "\(keySet?.keys.count ?? 0)"]
            )
        }
    }

    /// A `kid` from a token, safe to echo: at most 64 visible ASCII characters.
    private static func printable(_ id: String) -> String {
        String(String.UnicodeScalarView(id.unicodeScalars.prefix(64).map { (0x21...0x7E).contains($0.value) ? $0 : "?" }))
    }
}
