import AMQPClient
import Testing

@testable import Gateway
@testable import Shared
@testable import Worker

@Suite("Configuration")
struct ConfigurationTests {
    @Test(arguments: [
        ("postgres://u:pw9@db:5433/parley", "db", 5433, "u", "pw9", "parley"),
        ("postgresql://u:p%40ss@db/parley", "db", 5432, "u", "p@ss", "parley"),
        ("postgresql+asyncpg://parley:secret@127.0.0.1:5432/parley", "127.0.0.1", 5432, "parley", "secret", "parley"),
    ])
    func databaseURLsAreParsed(url: String, host: String, port: Int, user: String, password: String, database: String) throws {
        let settings = try DatabaseSettings(url: url)
        #expect(settings.host == host)
        #expect(settings.port == port)
        #expect(settings.user == user)
        #expect(settings.password == password)
        #expect(settings.database == database)
        #expect(settings.tls == .disable)
        #expect(!settings.redacted.contains(password))
    }

    @Test(arguments: ["mysql://u@h/db", "postgres://u@h", "not a url", "postgres://u@h/db?sslmode=maybe", "postgres://u@h:70000/db"])
    func badDatabaseURLsNameTheVariable(url: String) {
        #expect { try DatabaseSettings(url: url) } throws: { error in
            (error as? ConfigurationError)?.variable == "DATABASE_URL"
        }
    }

    @Test func amqpURLsAreParsed() throws {
        let endpoint = try #require(AMQPEndpoint(url: "amqp://bob:s%3Acret@broker:5673/%2fparley"))
        #expect(endpoint.host == "broker")
        #expect(endpoint.port == 5673)
        #expect(endpoint.user == "bob")
        #expect(endpoint.password == "s:cret")
        #expect(endpoint.virtualHost == "/parley")
        #expect(AMQPEndpoint(url: "amqp://h")?.virtualHost == "/")
        #expect(AMQPEndpoint(url: "http://h") == nil)
        // A port the socket layer cannot take (it trapped at the first connect).
        #expect(AMQPEndpoint(url: "amqp://h:99999999999") == nil)
        #expect(AMQPEndpoint(url: "amqp://h:0") == nil)
        #expect(!endpoint.redacted.contains("s:cret"))
    }

    @Test func numbersOutOfRangeNameTheVariable() {
        let environment = EnvironmentReader(["WORKER_CONCURRENCY": "0", "OPENAI_API_KEY": "k"])
        #expect { try WorkerSettings(environment: environment) } throws: { error in
            (error as? ConfigurationError)?.variable == "WORKER_CONCURRENCY"
        }
        #expect { try EnvironmentReader(["X": "ten"]).int("X", default: 1, range: 1...5) } throws: { error in
            (error as? ConfigurationError)?.description.contains("X must be a whole number") == true
        }
    }

    @Test func tasksRunOnTheEventLoopsUnlessTurnedOffAndABadValueNamesTheVariable() throws {
        #expect(try WorkerSettings(environment: EnvironmentReader(["OPENAI_API_KEY": "k"])).concurrencyOnEventLoops)
        let off = EnvironmentReader(["OPENAI_API_KEY": "k", "CONCURRENCY_ON_EVENT_LOOPS": "false", "JWT_SECRET": String(repeating: "s", count: 32)])
        #expect(try !WorkerSettings(environment: off).concurrencyOnEventLoops)
        #expect(try !GatewaySettings(environment: off).concurrencyOnEventLoops)
        let bad = EnvironmentReader(["OPENAI_API_KEY": "k", "CONCURRENCY_ON_EVENT_LOOPS": "sometimes"])
        #expect { try WorkerSettings(environment: bad) } throws: { error in
            (error as? ConfigurationError)?.variable == "CONCURRENCY_ON_EVENT_LOOPS"
        }
    }

    @Test func theWorkerNeedsAnLLMKey() {
        #expect { try WorkerSettings(environment: EnvironmentReader([:])) } throws: { error in
            (error as? ConfigurationError)?.variable == "OPENAI_API_KEY"
        }
    }

    @Test func authenticationIsOnByDefaultAndNeedsASecretOrKeys() throws {
        #expect { try GatewaySettings(environment: EnvironmentReader([:])) } throws: { error in
            (error as? ConfigurationError)?.variable == "JWT_SECRET"
        }
        let off = try GatewaySettings(environment: EnvironmentReader(["PARLEY_AUTH": "off", "GATEWAY_HOST": "127.0.0.1"]))
        guard case .off = off.authentication else {
            Issue.record("PARLEY_AUTH=off should turn authentication off")
            return
        }
        let keys = try GatewaySettings(environment: EnvironmentReader(["API_KEYS": "key-one-0123456789:alice, key-two-0123456789:bob"]))
        guard case .on(let rules) = keys.authentication else {
            Issue.record("authentication should be on")
            return
        }
        #expect(rules.algorithms.isEmpty)
        #expect(rules.apiKeys == ["key-one-0123456789": "alice", "key-two-0123456789": "bob"])
        #expect { try GatewaySettings(environment: EnvironmentReader(["API_KEYS": "justakey"])) } throws: { error in
            (error as? ConfigurationError)?.variable == "API_KEYS"
        }
        #expect {
            try GatewaySettings(environment: EnvironmentReader(["API_KEYS": "key-one-0123456789:\(String(repeating: "u", count: 300))"]))
        } throws: { error in
            (error as? ConfigurationError)?.variable == "API_KEYS"
        }
        #expect { try GatewaySettings(environment: EnvironmentReader(["JWT_SECRET": "short"])) } throws: { error in
            (error as? ConfigurationError)?.variable == "JWT_SECRET"
        }
    }

    @Test func anIdentityProviderKeySetIsEnoughAndItsURLIsChecked() throws {
        let idp = try GatewaySettings(
            environment: EnvironmentReader([
                "JWT_JWKS_URL": "https://id.example/realms/parley/protocol/openid-connect/certs", "JWT_AUDIENCE": "parley",
            ])
        )
        guard case .on(let rules) = idp.authentication else {
            Issue.record("authentication should be on")
            return
        }
        #expect(rules.algorithms == ["RS256", "ES256"])
        #expect(
            rules.keySet
                == .init(
                    url: "https://id.example/realms/parley/protocol/openid-connect/certs",
                    policy: .init(refreshAfter: .seconds(600), minRefetchInterval: .seconds(30))
                )
        )
        for (variable, value) in [
            ("JWT_JWKS_URL", "id.example/certs"), ("JWT_JWKS_URL", "ftp://id.example/certs"), ("JWT_JWKS_REFRESH_SECONDS", "5"), ("JWT_AUDIENCE", ""),
        ] {
            var environment = ["JWT_JWKS_URL": "https://id.example/certs", "JWT_AUDIENCE": "parley"]
            environment[variable] = value
            #expect { try GatewaySettings(environment: EnvironmentReader(environment)) } throws: { error in
                (error as? ConfigurationError)?.variable == variable
            }
        }
    }

    @Test func aBadGatewayIDIsRefused() {
        #expect {
            try GatewaySettings(environment: EnvironmentReader(["PARLEY_AUTH": "off", "GATEWAY_HOST": "127.0.0.1", "GATEWAY_ID": "a b"]))
        } throws: { error in
            (error as? ConfigurationError)?.variable == "GATEWAY_ID"
        }
    }

    /// Without tokens, a gateway reachable beyond this machine needs an Origin
    /// allow-list: otherwise any web page a person visits could open sockets as them.
    @Test func authenticationOffBeyondLoopbackNeedsAnOriginAllowList() throws {
        #expect { try GatewaySettings(environment: EnvironmentReader(["PARLEY_AUTH": "off"])) } throws: { error in
            (error as? ConfigurationError)?.variable == "ALLOWED_ORIGINS"
        }
        let listed = try GatewaySettings(
            environment: EnvironmentReader(["PARLEY_AUTH": "off", "ALLOWED_ORIGINS": "https://app.example, http://localhost:8080"])
        )
        #expect(listed.allowsOrigin(nil))  // not a browser
        #expect(listed.allowsOrigin("https://app.example"))
        #expect(!listed.allowsOrigin("https://evil.example"))
        #expect(listed.allowsOrigin("HTTPS://App.Example/"))
        // A loopback gateway without tokens takes sockets only from its own pages.
        let local = try GatewaySettings(environment: EnvironmentReader(["PARLEY_AUTH": "off", "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": "8080"]))
        #expect(!local.allowsOrigin("https://anything.example"))
        #expect(local.allowsOrigin("http://localhost:8080"))
        #expect(local.allowsOrigin(nil))
        let any = try GatewaySettings(environment: EnvironmentReader(["PARLEY_AUTH": "off", "ALLOWED_ORIGINS": "*"]))
        #expect(any.allowsOrigin("https://anything.example"))
    }

    @Test func aBrokerClusterIsGivenAsSeveralURLs() throws {
        let urls = "amqp://u:p@rmq-1:5672/%2f, amqp://u:p@rmq-2:5672/%2f,amqp://u:p@rmq-3:5673/%2f"
        for variable in ["AMQP_URL", "AMQP_URLS"] {
            let settings = try BrokerSettings(environment: EnvironmentReader([variable: urls, "AMQP_QUORUM_GROUP_SIZE": "3"]))
            #expect(Set(settings.endpoints.map { "\($0.host):\($0.port)" }) == ["rmq-1:5672", "rmq-2:5672", "rmq-3:5673"])
            #expect(settings.topology.turnsQueueArguments["x-quorum-initial-group-size"] == .int(3))
            // On a cluster the dead letters are replicated too (a classic queue's node
            // down blocked every declaration: fault suite R8).
            #expect(settings.topology.deadQueueArguments["x-queue-type"] == .string("quorum"))
        }
        let single = try BrokerSettings(environment: EnvironmentReader([:]))
        #expect(single.endpoints.count == 1 && single.topology.turnsQueueArguments["x-quorum-initial-group-size"] == nil)
        #expect(single.topology.deadQueueArguments.isEmpty)
        let behindOneURL = try BrokerSettings(environment: EnvironmentReader(["AMQP_CLUSTER": "on"]))
        #expect(behindOneURL.topology.deadQueueArguments["x-queue-type"] == .string("quorum"))
        #expect(throws: ConfigurationError(variable: "AMQP_URLS", problem: "names no broker node")) {
            try BrokerSettings(environment: EnvironmentReader(["AMQP_URLS": " , "]))
        }
        do {
            _ = try BrokerSettings(environment: EnvironmentReader(["AMQP_URL": "amqp://a:5672/%2f,http://b"]))
            Issue.record("a bad node was accepted")
        } catch {
            #expect(error.variable == "AMQP_URL")
        }
        do {
            _ = try BrokerSettings(environment: EnvironmentReader(["AMQP_URL": "amqp://a:5672/one,amqp://b:5672/two"]))
            Issue.record("nodes of two virtual hosts were accepted")
        } catch {
            #expect(error.problem.contains("virtual hosts"))
        }
    }
}
