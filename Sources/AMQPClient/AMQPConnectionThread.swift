import CRabbitMQ
import Foundation
import Logging
import ParleySupport
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a publisher or consumer does with its connection. Every method is called
/// on the connection's own thread, never concurrently.
protocol AMQPConnectionRole: AnyObject, Sendable {
    /// Called after login and topology declaration; set up the channel here.
    func didConnect(_ wire: AMQPWire, generation: Int) throws(AMQPError)
    func handle(_ frame: AMQPIncomingFrame, wire: AMQPWire) throws(AMQPError)
    /// The connection is gone; fail whatever waits on it.
    func didDisconnect(_ error: AMQPError)
    /// Called once per loop turn to expire waits.
    func checkDeadlines(now: ContinuousClock.Instant)
}

/// Owns one rabbitmq-c connection on one dedicated thread.
///
/// rabbitmq-c connections are not thread-safe and their calls block, so the
/// connection lives on a thread of its own and the rest of the program talks to it
/// through commands. The thread waits in `poll(2)` on the socket and on an eventfd
/// that `submit` signals, so commands run at once and frames (deliveries, confirms,
/// heartbeats) are read as they arrive. A lost connection is re-established with
/// exponential backoff, the topology re-declared, and the role told.
final class AMQPConnectionThread: @unchecked Sendable {
    // @unchecked: `role` and `wire` are touched only on the owned thread; everything
    // shared with other threads is inside `shared` (a Mutex) or `connected` (an Atomic).

    struct Command: Sendable {
        let run: @Sendable (AMQPWire) throws(AMQPError) -> Void
        let fail: @Sendable (AMQPError) -> Void
    }

    private struct SharedState {
        var commands: [Command] = []
        var stopping = false
        var started = false
        var lastError = "not connected yet"
        var onStopped: [CheckedContinuation<Void, Never>] = []
        var hasStopped = false
    }

    let name: String
    /// The cluster's nodes, in the order this connection tries them: it stays on one
    /// while it serves, and moves to the next when a connection fails or is lost.
    private let endpoints: [AMQPEndpoint]
    private let topology: AMQPTopology
    private let heartbeatSeconds: Int32
    private let role: any AMQPConnectionRole
    private let logger: Logger
    private let shared = Mutex(SharedState())
    private let connected = Atomic<Bool>(false)
    private let wakeDescriptor: Int32

    init(
        name: String,
        endpoints: [AMQPEndpoint],
        topology: AMQPTopology,
        heartbeatSeconds: Int32 = 10,
        role: any AMQPConnectionRole,
        logger: Logger
    ) {
        self.name = name
        precondition(!endpoints.isEmpty, "a connection needs at least one broker node")
        self.endpoints = endpoints
        self.topology = topology
        self.heartbeatSeconds = heartbeatSeconds
        self.role = role
        var logger = logger
        logger[metadataKey: "amqp_connection"] = .string(name)
        self.logger = logger
        self.wakeDescriptor = parley_make_wake_descriptor()
    }

    deinit {
        close(wakeDescriptor)
    }

    var isConnected: Bool { connected.load(ordering: .acquiring) }

    var lastError: String { shared.withLock { $0.lastError } }

    /// Starts the thread once; later calls do nothing.
    func start() {
        let shouldStart = shared.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started && !state.stopping
        }
        guard shouldStart else { return }
        let thread = Thread { [self] in self.loop() }
        thread.name = "amqp-\(name)"
        thread.start()
    }

    /// Asks the thread to close the connection and exit.
    func stop() {
        let neverStarted = shared.withLock { state -> Bool in
            state.stopping = true
            return !state.started
        }
        if neverStarted { finishStopping() }
        wake()
    }

    /// Returns when the thread has exited.
    func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = shared.withLock { state -> Bool in
                if state.hasStopped { return true }
                state.onStopped.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Runs `command` on the connection thread, or fails it at once when there is no
    /// connection (callers turn that into a clear "unavailable" rather than wait).
    func submit(_ command: Command) {
        let refusal: AMQPError? = shared.withLock { state in
            if state.stopping { return .shutDown }
            if !connected.load(ordering: .acquiring) { return .notConnected(state.lastError) }
            state.commands.append(command)
            return nil
        }
        if let refusal {
            command.fail(refusal)
        } else {
            wake()
        }
    }

    // MARK: The thread

    private var isStopping: Bool { shared.withLock { $0.stopping } }

    private func loop() {
        var generation = 0
        var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(10))
        // Which node is next, and how many failed in a row: the next node is tried at
        // once, and the backoff waits only when every node has failed since the last
        // connection that worked.
        var node = 0
        var failedInARow = 0
        while !isStopping {
            generation += 1
            guard let wire = connect(generation: generation, to: endpoints[node]) else {
                node = (node + 1) % endpoints.count
                failedInARow += 1
                if failedInARow % endpoints.count == 0 { waitForWake(upTo: backoff.next()) }
                continue
            }
            backoff.reset()
            failedInARow = 0
            let error = serve(wire)
            connected.store(false, ordering: .releasing)
            // Commands that never ran were never sent: say so (`notConnected`), unlike
            // work in flight, whose outcome is unknown (`connectionLost`).
            failQueuedCommands(with: error.map { .notConnected($0.description) } ?? .shutDown)
            role.didDisconnect(error ?? .shutDown)
            if let error {
                shared.withLock { $0.lastError = error.description }
                logger.warning(
                    "broker connection lost, reconnecting",
                    metadata: ["endpoint": "\(endpoints[node].redacted)", "error": "\(error)"]
                )
                // The node may be gone: fail over to the next one.
                node = (node + 1) % endpoints.count
                // A broken connection cannot be closed politely; just free it.
            } else {
                wire.close()
            }
        }
        finishStopping()
    }

    private func finishStopping() {
        failQueuedCommands(with: .shutDown)
        let waiters = shared.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.hasStopped = true
            defer { state.onStopped = [] }
            return state.onStopped
        }
        for waiter in waiters { waiter.resume() }
    }

    private func connect(generation: Int, to endpoint: AMQPEndpoint) -> AMQPWire? {
        do throws(AMQPError) {
            let wire = try AMQPWire(endpoint: endpoint, name: name, heartbeatSeconds: heartbeatSeconds, connectTimeout: .seconds(5))
            do throws(AMQPError) {
                try topology.declare(on: wire)
                try role.didConnect(wire, generation: generation)
            } catch {
                wire.close()
                throw error
            }
            connected.store(true, ordering: .releasing)
            logger.info("connected to the broker", metadata: ["endpoint": "\(endpoint.redacted)", "generation": "\(generation)"])
            return wire
        } catch {
            let text = error.description
            let firstFailure = shared.withLock { state -> Bool in
                defer { state.lastError = text }
                return state.lastError != text
            }
            if firstFailure {
                logger.error(
                    "cannot connect to the broker, retrying with backoff",
                    metadata: ["endpoint": "\(endpoint.redacted)", "error": "\(text)"]
                )
            }
            return nil
        }
    }

    /// Runs commands and reads frames until the connection fails (returns the error)
    /// or the thread is asked to stop (returns nil).
    private func serve(_ wire: AMQPWire) -> AMQPError? {
        do throws(AMQPError) {
            var nextHeartbeatCheck = ContinuousClock.now
            var partialFrame = false
            while !isStopping {
                try run(takeCommands(), on: wire)
                // Reads take what has arrived without blocking, so that commands
                // queued meanwhile are not held up. Once a second the first read waits
                // 1 ms instead: only a real deadline lets rabbitmq-c notice that the
                // broker's heartbeats stopped (with an immediate one it never compares
                // against them). It also waits when a frame has arrived only in part,
                // rather than spin until the rest is there.
                var wait = Duration.zero
                if partialFrame || ContinuousClock.now >= nextHeartbeatCheck {
                    wait = .milliseconds(1)
                    nextHeartbeatCheck = .now + .seconds(1)
                }
                var frames = 0
                while let frame = try wire.nextFrame(timeout: wait) {
                    try role.handle(frame, wire: wire)
                    frames += 1
                    wait = .zero
                }
                role.checkDeadlines(now: .now)
                partialFrame = frames == 0 && wire.hasBufferedInput
                if wire.hasBufferedInput || hasQueuedCommands { continue }
                waitForInput(on: wire.socketDescriptor, upTo: .seconds(1))
            }
            return nil
        } catch {
            return error
        }
    }

    /// Runs a batch of commands in order. When one fails the connection is treated as
    /// broken: that command gets its error, and the ones behind it, never run and so
    /// never sent, get `notConnected` — every command ends, one way or the other.
    private func run(_ batch: [Command], on wire: AMQPWire) throws(AMQPError) {
        for (index, command) in batch.enumerated() {
            do throws(AMQPError) {
                try command.run(wire)
            } catch {
                command.fail(error)
                let unrun = AMQPError.notConnected("the connection failed before this command was sent (\(error))")
                for later in batch[(index + 1)...] { later.fail(unrun) }
                throw error
            }
        }
    }

    private var hasQueuedCommands: Bool { shared.withLock { !$0.commands.isEmpty } }

    private func takeCommands() -> [Command] {
        shared.withLock { state in
            defer { state.commands = [] }
            return state.commands
        }
    }

    private func failQueuedCommands(with error: AMQPError) {
        for command in takeCommands() { command.fail(error) }
    }

    // MARK: Waiting

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeDescriptor, &one, MemoryLayout<UInt64>.size)
    }

    private func drainWake() {
        var value: UInt64 = 0
        _ = read(wakeDescriptor, &value, MemoryLayout<UInt64>.size)
    }

    private func waitForInput(on socket: Int32, upTo timeout: Duration) {
        var descriptors = [
            pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        _ = poll(&descriptors, nfds_t(descriptors.count), Int32(timeout.wholeMilliseconds))
        drainWake()
    }

    /// Between connection attempts: sleeps up to `timeout`, failing commands that
    /// arrive meanwhile (there is no connection to run them on).
    private func waitForWake(upTo timeout: Duration) {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !isStopping, ContinuousClock.now < deadline {
            var descriptor = pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)
            let remaining = ContinuousClock.now.duration(to: deadline)
            _ = poll(&descriptor, 1, Int32(max(remaining.wholeMilliseconds, 1)))
            drainWake()
            let text = shared.withLock { $0.lastError }
            failQueuedCommands(with: .notConnected(text))
        }
    }
}
