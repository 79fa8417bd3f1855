import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import ParleyTestSupport
import Synchronization
import Testing

@testable import Gateway
@testable import Shared

/// The Graph API at the wire's edge: records what was sent, serves voice notes, and
/// fails the way it is told to.
final class FakeGraph: WhatsAppGraph {
    struct Sent: Sendable, Equatable {
        var to: String
        var from: String
        var text: String
    }

    let sent = Mutex<[Sent]>([])
    /// Failures of the next sends, in order.
    let failures = Mutex<[GraphError]>([])
    let media = Mutex<[String: [UInt8]]>([:])

    func send(text: String, to recipient: String, from phoneNumberID: String) async throws(GraphError) {
        if let failure = failures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { throw failure }
        sent.withLock { $0.append(Sent(to: recipient, from: phoneNumberID, text: text)) }
    }

    func media(id: String) async throws(GraphError) -> WhatsAppMedia {
        guard let bytes = media.withLock({ $0[id] }) else { throw .rejected(status: 404, body: "no media \(id)") }
        return WhatsAppMedia(url: "https://graph.test/media/\(id)", mimeType: "audio/ogg; codecs=opus", size: bytes.count)
    }

    func download(_ media: WhatsAppMedia, limit: Int) async throws(GraphError) -> [UInt8] {
        let id = String(media.url.split(separator: "/").last ?? "")
        let bytes = self.media.withLock { $0[id] } ?? []
        guard bytes.count <= limit else { throw .rejected(status: 413, body: "too large") }
        return bytes
    }

    var texts: [String] { sent.withLock { $0.map(\.text) } }
}

/// "Hears" a voice note's bytes as UTF-8 text, as the simulator does.
struct TextTranscriber: SpeechTranscriber {
    func transcribe(_ audio: [UInt8], mimeType: String) async throws(GraphError) -> String {
        String(decoding: audio, as: UTF8.self)
    }
}

@Suite("WhatsApp channel", .timeLimit(.minutes(1)))
struct WhatsAppChannelTests {
    let logger = Logger(label: "test")
    static let secret = "app-secret-0123456789"
    static let botKey = "bot-key-0123456789abcdef"

    struct Harness {
        let app: Application<RouterResponder<GatewayRequestContext>>
        let relay: WhatsAppRelay
        let inbox: InMemoryWhatsAppInbox
        let graph: FakeGraph
        let broker: InMemoryBroker
        let store: InMemoryConversationStore
        let ledger: InMemoryTurnLedger
    }

    /// The gateway's routes with the WhatsApp channel on, over in-memory parts, with
    /// the echo worker answering; the relay runs when `relayRuns`.
    func withChannel(
        relayRuns: Bool = true,
        transcriber: (any SpeechTranscriber)? = TextTranscriber(),
        _ body: (Harness) async throws -> Void
    )
        async throws
    {
        let variables = [
            "PARLEY_AUTH": "off", "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": "0",
            "WHATSAPP_APP_SECRET": Self.secret, "WHATSAPP_VERIFY_TOKEN": "verify-me", "WHATSAPP_ACCESS_TOKEN": "graph-token",
            "WHATSAPP_RETRY_BASE_MS": "10", "WHATSAPP_RETRY_MAX_MS": "40", "WHATSAPP_API_KEYS": Self.botKey,
        ]
        let settings = try GatewaySettings(environment: EnvironmentReader(variables))
        let (ledger, broker, graph) = (InMemoryTurnLedger(), InMemoryBroker(), FakeGraph())
        let store = InMemoryConversationStore(ledger: ledger)
        let inbox = InMemoryWhatsAppInbox(store: store, ledger: ledger)
        let boundaries = GatewayBoundaries(
            store: store,
            ledger: ledger,
            publisher: broker,
            subscriptions: broker,
            contexts: CatalogContextSource(catalog: InMemoryTopicCatalog([]), logger: logger),
            directory: store,
            catalog: InMemoryTopicCatalog([]),
            accounts: InMemoryAccountStore(sessions: store),
            keys: nil,
            healthChecks: [:],
            whatsappInbox: inbox,
            graph: graph,
            transcriber: transcriber
        )
        let routes = buildRouter(settings: settings, boundaries: boundaries, logger: logger)
        var relay = try #require(routes.whatsappRelay)
        relay.pollInterval = .milliseconds(10)
        var app = publicServer(routes, settings: settings, logger: logger)
        app.addServices(routes.pipeline, routes.restTurns)
        let worker = EchoWorker(broker: broker, store: store, pipeline: routes.pipeline)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await worker.run() }
            if relayRuns { group.addTask { [relay] in await relay.run() } }
            defer { group.cancelAll() }
            // The pipeline and the REST turns run while a test's `app.test` does.
            try await body(Harness(app: app, relay: relay, inbox: inbox, graph: graph, broker: broker, store: store, ledger: ledger))
        }
    }

    static func delivery(_ messages: [[String: Any]], statuses: [[String: Any]] = [], phoneNumberID: String = "106540352242922") -> [UInt8] {
        let value: [String: Any] = [
            "messaging_product": "whatsapp",
            "metadata": ["display_phone_number": "15550783881", "phone_number_id": phoneNumberID],
            "messages": messages,
            "statuses": statuses,
        ]
        let body: [String: Any] = [
            "object": "whatsapp_business_account", "entry": [["id": "102290129340398", "changes": [["field": "messages", "value": value]]]],
        ]
        return Array(try! JSONSerialization.data(withJSONObject: body))
    }

    static func text(_ body: String, id: String, from sender: String = "16505551234") -> [String: Any] {
        ["from": sender, "id": id, "timestamp": "1749416383", "type": "text", "text": ["body": body]]
    }

    func post(
        _ body: [UInt8],
        signedWith secret: String = WhatsAppChannelTests.secret,
        to client: some TestClientProtocol
    ) async throws -> TestResponse {
        let signature = WebhookSignature.sign(body, secret: SymmetricKey(data: Data(secret.utf8)))
        return try await client.execute(
            uri: "/whatsapp/webhook",
            method: .post,
            headers: [HTTPField.Name("X-Hub-Signature-256")!: signature, .contentType: "application/json"],
            body: ByteBuffer(bytes: body)
        )
    }

    /// Ends `turn` in the ledger with an error reply, as a worker whose model failed does.
    static func fail(_ turn: TurnEnvelope, in ledger: InMemoryTurnLedger, _ message: String) async throws {
        try await ledger.register(turn)
        let attempt = LedgerAttempt()
        _ = try await ledger.claim(turn, attempt: attempt, holdFor: .seconds(30))
        _ = try await ledger.settle(
            turnID: turn.turnID,
            attempt: attempt,
            as: .failed,
            failure: SettledFailure(code: .llmUnavailable, message: message)
        )
    }

    // MARK: The webhook

    @Test func theVerificationEchoesTheChallengeOnlyForTheVerifyToken() async throws {
        try await withChannel(relayRuns: false) { channel in
            try await channel.app.test(.router) { client in
                let good = try await client.execute(
                    uri: "/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444",
                    method: .get
                )
                #expect(good.status == .ok && String(buffer: good.body) == "1158201444")
                let bad = try await client.execute(uri: "/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1", method: .get)
                #expect(bad.status == .forbidden)
                let script = try await client.execute(
                    uri: "/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=%3Cscript%3E",
                    method: .get
                )
                #expect(script.status == .badRequest)
            }
        }
    }

    @Test(arguments: ["wrong-secret-0123456789", ""])
    func aDeliveryWithoutTheAppSecretsSignatureIsRefusedAndNothingIsStored(secret: String) async throws {
        try await withChannel(relayRuns: false) { channel in
            try await channel.app.test(.router) { client in
                let body = Self.delivery([Self.text("hi", id: "wamid.A")])
                let response =
                    secret.isEmpty
                    ? try await client.execute(uri: "/whatsapp/webhook", method: .post, body: ByteBuffer(bytes: body))
                    : try await post(body, signedWith: secret, to: client)
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("invalid_signature"))
                #expect(channel.inbox.all.isEmpty)
            }
        }
    }

    @Test func aSignedDeliveryIsStoredOnceAndItsRedeliveryStoresNothing() async throws {
        try await withChannel(relayRuns: false) { channel in
            try await channel.app.test(.router) { client in
                let body = Self.delivery(
                    [Self.text("hi", id: "wamid.A"), ["from": "16505551234", "id": "wamid.R", "type": "reaction", "reaction": ["emoji": "👍"]]],
                    statuses: [["id": "wamid.OLD", "status": "delivered", "recipient_id": "16505551234"]]
                )
                let first = try await post(body, to: client)
                #expect(first.status == .ok)
                #expect(String(buffer: first.body) == #"{"duplicates":0,"ignored":1,"statuses":1,"stored":1}"#)
                let again = try await post(body, to: client)
                #expect(again.status == .ok && String(buffer: again.body).contains(#""duplicates":1"#))
                #expect(
                    channel.inbox.all.map(\.inbound) == [
                        WhatsAppInbound(messageID: "wamid.A", phoneNumberID: "106540352242922", sender: "16505551234", kind: .text, text: "hi")
                    ]
                )
                let notJSON = try await post(Array("not json".utf8), to: client)
                #expect(notJSON.status == .badRequest)
            }
        }
    }

    // MARK: The relay

    @Test func messagesAreAnsweredThroughTheGraphAPIInTheirOrderPerSender() async throws {
        try await withChannel { channel in
            try await channel.app.test(.router) { client in
                let body = Self.delivery([
                    Self.text("one", id: "wamid.1"), Self.text("two", id: "wamid.2"), Self.text("other", id: "wamid.3", from: "5511999990000"),
                ])
                #expect(try await post(body, to: client).status == .ok)
                try await eventually("three replies were sent") { channel.graph.sent.withLock { $0.count } == 3 }
                let sent = channel.graph.sent.withLock { $0 }
                #expect(sent.filter { $0.to == "16505551234" }.map(\.text) == ["eco: one", "eco: two"])
                #expect(sent.first { $0.to == "5511999990000" } == .init(to: "5511999990000", from: "106540352242922", text: "eco: other"))
                try await eventually("every message is finished") { channel.inbox.all.allSatisfy { $0.state == .sent } }
                // One session per number, both turns in it.
                let sessions = try await channel.store.sessions(ofUser: "whatsapp:16505551234", before: nil, limit: 10)
                #expect(sessions.count == 1)
                #expect(try await channel.store.userMessageCount(session: sessions[0].id) == 2)
            }
        }
    }

    @Test func aReplyTheGraphAPIDidNotTakeIsSentAgainAndOnce() async throws {
        try await withChannel { channel in
            channel.graph.failures.withLock { $0 = [.unavailable("503"), .unavailable("timeout")] }
            try await channel.app.test(.router) { client in
                #expect(try await post(Self.delivery([Self.text("hi", id: "wamid.A")]), to: client).status == .ok)
                try await eventually("the message is finished") { channel.inbox.all.first?.state == .sent }
                #expect(channel.graph.texts == ["eco: hi"])
                // The retries asked the store, not the worker: one turn only.
                #expect(channel.broker.publishedCount.withLock { $0 } == 1)
            }
        }
    }

    @Test func aReplyTheGraphAPIRefusesEndsFailedAndTheSendersNextMessageGoesOn() async throws {
        try await withChannel { channel in
            channel.graph.failures.withLock { $0 = [.rejected(status: 400, body: "recipient not on WhatsApp")] }
            try await channel.app.test(.router) { client in
                #expect(try await post(Self.delivery([Self.text("one", id: "wamid.1"), Self.text("two", id: "wamid.2")]), to: client).status == .ok)
                try await eventually("both messages are finished") { channel.inbox.all.allSatisfy(\.state.isFinished) }
                #expect(channel.inbox.all.map(\.state) == [.failed, .sent])
                #expect(channel.inbox.all.first?.lastError?.contains("recipient not on WhatsApp") == true)
                #expect(channel.graph.texts == ["eco: two"])
            }
        }
    }

    /// A relay that stopped after the turn was answered (and before it wrote the reply)
    /// reads the stored reply: the worker is not asked a second time.
    @Test func aMessageTakenUpAgainAfterItsTurnWasAnsweredIsNotAskedAgain() async throws {
        try await withChannel(relayRuns: false) { channel in
            _ = try await channel.inbox.store([WhatsAppInbound(messageID: "wamid.A", phoneNumberID: "1", sender: "123", kind: .text, text: "hi")])
            var message = try #require(try await channel.inbox.claim(limit: 1, lease: .seconds(60)).first)
            // The first relay got as far as the turn: sent and answered.
            let sessionID = UUID()
            try await channel.store.createSession(SessionRecord(id: sessionID, userID: "whatsapp:123"))
            message.sessionID = sessionID
            message.turnID = WhatsAppTurnID.of(messageID: "wamid.A", attempt: 0)
            message.state = .submitted
            #expect(try await channel.inbox.save(message))
            _ = try await channel.store.record(
                CompletedTurn(
                    sessionID: sessionID,
                    turnID: message.turnID!,
                    userContent: "hi",
                    replyContent: "stored answer",
                    rawReply: "stored answer",
                    model: "echo",
                    usage: .init(),
                    latencyMilliseconds: 1
                )
            )
            try await channel.inbox.release(message, error: "the gateway stopped", retryIn: .zero)
            let next = try #require(try await channel.inbox.claim(limit: 1, lease: .seconds(60)).first)
            await channel.relay.process(next)
            #expect(channel.graph.texts == ["stored answer"])
            #expect(channel.broker.publishedCount.withLock { $0 } == 0)
            #expect(channel.inbox.all.first?.state == .sent)
        }
    }

    @Test func aTurnThatEndedUnansweredIsFollowedByANewTurnAndAtLastByAnApology() async throws {
        try await withChannel(relayRuns: false) { channel in
            _ = try await channel.inbox.store([WhatsAppInbound(messageID: "wamid.A", phoneNumberID: "1", sender: "123", kind: .text, text: "hi")])
            var relay = channel.relay
            relay.maxSubmissions = 1
            var message = try #require(try await channel.inbox.claim(limit: 1, lease: .seconds(60)).first)
            message.sessionID = UUID()
            message.turnID = UUID()
            message.state = .submitted
            message.lastError = "llm_unavailable: the model is down"
            #expect(try await channel.inbox.save(message))
            // Its turn failed in the ledger: it will never be answered.
            let turn = TurnEnvelope(
                kind: .message,
                turnID: message.turnID!,
                sessionID: message.sessionID!,
                userID: "whatsapp:123",
                content: "hi",
                gatewayID: "g"
            )
            try await Self.fail(turn, in: channel.ledger, "the model is down")
            await relay.process(message)
            #expect(
                channel.graph.texts == [
                    "Sorry, I could not answer your message (the language model is unavailable). Please send it again in a while."
                ]
            )
        }
    }

    /// Review finding: a turn the broker refused (withdrawn) used up the message's turns,
    /// so a short broker outage ended in an apology instead of an answer.
    @Test func aTurnTheBrokerNeverTookIsAskedAgainWithoutCountingAgainstTheMessage() async throws {
        try await withChannel(relayRuns: false) { channel in
            _ = try await channel.inbox.store([WhatsAppInbound(messageID: "wamid.A", phoneNumberID: "1", sender: "123", kind: .text, text: "hi")])
            var relay = channel.relay
            relay.maxSubmissions = 1
            let sessionID = UUID()
            try await channel.store.createSession(SessionRecord(id: sessionID, userID: "whatsapp:123"))
            var message = try #require(try await channel.inbox.claim(limit: 1, lease: .seconds(60)).first)
            message.sessionID = sessionID
            message.turnID = UUID()
            message.state = .submitted
            #expect(try await channel.inbox.save(message))
            let refused = TurnEnvelope(
                kind: .message,
                turnID: message.turnID!,
                sessionID: sessionID,
                userID: "whatsapp:123",
                content: "hi",
                gatewayID: "g"
            )
            try await channel.ledger.withdraw(refused)
            await relay.process(message)
            let retried = try #require(channel.inbox.all.first)
            #expect(retried.state == .submitted && retried.submissions == 0 && retried.turnID != refused.turnID)
            try await channel.app.test(.router) { [relay] _ in
                try await eventually("the message is answered") {
                    guard let next = try await channel.inbox.claim(limit: 1, lease: .seconds(60)).first else { return false }
                    await relay.process(next)
                    return channel.inbox.all.first?.state == .sent
                }
            }
            #expect(channel.graph.texts == ["eco: hi"])
        }
    }

    /// Review finding: a refused access token (401) failed every reply for good.
    @Test func aReplyRefusedForTheAccessTokenIsRetried() async throws {
        try await withChannel { channel in
            channel.graph.failures.withLock { $0 = [.rejected(status: 401, body: #"{"error":{"code":190}}"#)] }
            try await channel.app.test(.router) { client in
                #expect(try await post(Self.delivery([Self.text("hi", id: "wamid.A")]), to: client).status == .ok)
                try await eventually("the message is finished") { channel.inbox.all.first?.state.isFinished == true }
                #expect(channel.inbox.all.first?.state == .sent)
                #expect(channel.graph.texts == ["eco: hi"])
            }
        }
    }

    /// Review finding: a relay whose claim was taken over went on and posted the reply
    /// next to the relay that took it.
    @Test func aRelayThatLostItsClaimDoesNotPostTheReply() async throws {
        try await withChannel(relayRuns: false) { channel in
            _ = try await channel.inbox.store([WhatsAppInbound(messageID: "wamid.A", phoneNumberID: "1", sender: "123", kind: .text, text: "hi")])
            var stale = try #require(try await channel.inbox.claim(limit: 1, lease: .seconds(60)).first)
            stale.state = .answered
            stale.reply = "an answer"
            #expect(try await channel.inbox.save(stale))
            // Its lease ran out and another relay claimed the message.
            try await channel.inbox.release(stale, error: nil, retryIn: .zero)
            let current = try #require(try await channel.inbox.claim(limit: 1, lease: .seconds(60)).first)
            await channel.relay.process(stale)
            #expect(channel.graph.texts.isEmpty)
            await channel.relay.process(current)
            #expect(channel.graph.texts == ["an answer"])
        }
    }

    /// Review finding: the older bot's call repeated with the same message_id after its
    /// turn failed got the failure back for ever.
    @Test func theOlderBotsRetryAfterAFailedTurnIsAskedAgain() async throws {
        try await withChannel(relayRuns: false) { channel in
            try await channel.app.test(.router) { client in
                let failed = WhatsAppTurnID.of(messageID: "whatsapp:16505551234:m1", attempt: 0)
                let sessionID = UUID()
                let turn = TurnEnvelope(
                    kind: .message,
                    turnID: failed,
                    sessionID: sessionID,
                    userID: "whatsapp:16505551234",
                    content: "oi",
                    gatewayID: "g"
                )
                try await Self.fail(turn, in: channel.ledger, "down")
                let response = try await client.execute(
                    uri: "/whatsapp",
                    method: .post,
                    headers: [.authorization: "Bearer \(Self.botKey)"],
                    body: ByteBuffer(string: #"{"number":"16505551234","text":"oi","message_id":"m1"}"#)
                )
                let answer = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                #expect(answer?["reply"] as? String == "eco: oi")
                #expect(answer?["turn_id"] as? String == WhatsAppTurnID.of(messageID: "whatsapp:16505551234:m1", attempt: 1).lowercased)
            }
        }
    }

    @Test func aVoiceNoteIsTranscribedAndAnsweredAsText() async throws {
        try await withChannel { channel in
            channel.graph.media.withLock { $0["media-1"] = Array("what is a monad?".utf8) }
            try await channel.app.test(.router) { client in
                let voice: [String: Any] = [
                    "from": "16505551234", "id": "wamid.V", "type": "audio",
                    "audio": ["id": "media-1", "mime_type": "audio/ogg; codecs=opus", "voice": true],
                ]
                let image: [String: Any] = ["from": "16505551234", "id": "wamid.I", "type": "image", "image": ["id": "media-2"]]
                #expect(try await post(Self.delivery([voice, image]), to: client).status == .ok)
                try await eventually("both were answered") { channel.graph.sent.withLock { $0.count } == 2 }
                #expect(channel.graph.texts == ["eco: what is a monad?", WhatsAppText.unsupported])
                #expect(channel.inbox.all.first?.inbound.text == "what is a monad?")
            }
        }
    }

    @Test func aVoiceNoteWithoutATranscriberIsAnsweredWithARequestToWrite() async throws {
        try await withChannel(transcriber: nil) { channel in
            try await channel.app.test(.router) { client in
                let voice: [String: Any] = ["from": "16505551234", "id": "wamid.V", "type": "audio", "audio": ["id": "media-1"]]
                #expect(try await post(Self.delivery([voice]), to: client).status == .ok)
                try await eventually("it was answered") { !channel.graph.texts.isEmpty }
                #expect(channel.graph.texts == [WhatsAppText.voiceNotesOff])
                #expect(channel.broker.publishedCount.withLock { $0 } == 0)
            }
        }
    }

    // MARK: The older bot's endpoints

    @Test func theOlderBotsEndpointsAnswerWithTheReplyAndTheTurnCount() async throws {
        try await withChannel(relayRuns: false) { channel in
            try await channel.app.test(.router) { client in
                let headers: HTTPFields = [.authorization: "Bearer \(Self.botKey)", .contentType: "application/json"]
                let first = try await client.execute(
                    uri: "/whatsapp",
                    method: .post,
                    headers: headers,
                    body: ByteBuffer(string: #"{"number":"+1 650-555-1234","text":"oi","message_id":"m1"}"#)
                )
                #expect(first.status == .ok, "\(String(buffer: first.body))")
                let answer = try JSONSerialization.jsonObject(with: Data(buffer: first.body)) as? [String: Any]
                #expect(answer?["user_id"] as? String == "16505551234")
                #expect(answer?["reply"] as? String == "eco: oi")
                #expect(answer?["turns"] as? Int == 1)
                // The same message id again: the same turn, answered once.
                let again = try await client.execute(
                    uri: "/whatsapp",
                    method: .post,
                    headers: headers,
                    body: ByteBuffer(string: #"{"number":"16505551234","text":"oi","message_id":"m1"}"#)
                )
                let repeated = try JSONSerialization.jsonObject(with: Data(buffer: again.body)) as? [String: Any]
                #expect(repeated?["turns"] as? Int == 1 && repeated?["turn_id"] as? String == answer?["turn_id"] as? String)

                let chat = try await client.execute(
                    uri: "/chat",
                    method: .post,
                    headers: headers,
                    body: ByteBuffer(string: #"{"user_id":"ana","message":"tudo bem?"}"#)
                )
                let chatAnswer = try JSONSerialization.jsonObject(with: Data(buffer: chat.body)) as? [String: Any]
                #expect(chatAnswer?["user_id"] as? String == "ana" && chatAnswer?["reply"] as? String == "eco: tudo bem?")
                #expect(try await channel.store.sessions(ofUser: "bot:ana", before: nil, limit: 5).count == 1)

                let keyless = try await client.execute(uri: "/chat", method: .post, body: ByteBuffer(string: #"{"user_id":"ana","message":"x"}"#))
                #expect(keyless.status == .unauthorized)
                let badNumber = try await client.execute(
                    uri: "/whatsapp",
                    method: .post,
                    headers: headers,
                    body: ByteBuffer(string: #"{"number":"call me","text":"x"}"#)
                )
                #expect(badNumber.status == .badRequest)
            }
        }
    }

    // MARK: Values

    @Test func turnIDsAreNameBasedUUIDsOfTheMessageAndTheSubmission() {
        let first = WhatsAppTurnID.of(messageID: "wamid.A", attempt: 0)
        #expect(first == WhatsAppTurnID.of(messageID: "wamid.A", attempt: 0))
        #expect(first != WhatsAppTurnID.of(messageID: "wamid.A", attempt: 1))
        #expect(first != WhatsAppTurnID.of(messageID: "wamid.B", attempt: 0))
        #expect(first.uuidString.lowercased().dropFirst(14).first == "5")
        #expect(["8", "9", "a", "b"].contains(first.uuidString.lowercased().dropFirst(19).first.map(String.init) ?? ""))
    }

    @Test func aLongReplyIsCutIntoPartsTheGraphAPITakesAtAParagraphOrASpace() {
        let paragraph = String(repeating: "word ", count: 600)
        let parts = WhatsAppText.parts(of: paragraph + "\n\n" + paragraph)
        #expect(parts.count == 2)
        #expect(parts.allSatisfy { $0.count <= WhatsAppText.maxPartCharacters })
        #expect(parts.joined() == paragraph + "\n\n" + paragraph)
        #expect(parts[0].hasSuffix("\n\n"))
        let unbroken = String(repeating: "x", count: 9000)
        #expect(WhatsAppText.parts(of: unbroken).map(\.count) == [4096, 4096, 808])
        #expect(WhatsAppText.parts(of: "short") == ["short"])
    }

    @Test func signaturesAreTheHMACOfTheRawBody() {
        let key = SymmetricKey(data: Data("secret".utf8))
        let body = Array(#"{"a":1}"#.utf8)
        let signature = WebhookSignature.sign(body, secret: key)
        #expect(WebhookSignature.isValid(signature, body: body, secret: key))
        #expect(WebhookSignature.isValid(signature.uppercased().replacingOccurrences(of: "SHA256=", with: "sha256="), body: body, secret: key))
        #expect(!WebhookSignature.isValid(signature, body: body + [0x20], secret: key))
        #expect(!WebhookSignature.isValid(String(signature.dropLast()), body: body, secret: key))
        #expect(!WebhookSignature.isValid("sha1=" + signature.dropFirst(7), body: body, secret: key))
        #expect(!WebhookSignature.isValid(nil, body: body, secret: key))
    }

    @Test func configurationNamesTheMissingSecret() throws {
        #expect(throws: ConfigurationError.self) {
            try WhatsAppSettings(environment: EnvironmentReader(["WHATSAPP_APP_SECRET": "s", "WHATSAPP_VERIFY_TOKEN": "v"]))
        }
        do {
            _ = try WhatsAppSettings(environment: EnvironmentReader(["WHATSAPP_APP_SECRET": "s", "WHATSAPP_VERIFY_TOKEN": "v"]))
        } catch {
            #expect(error.variable == "WHATSAPP_ACCESS_TOKEN")
        }
        #expect((try? WhatsAppSettings(environment: EnvironmentReader([:])))?.isEnabled == false)
    }
}
