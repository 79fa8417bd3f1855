import CRabbitMQ
import Foundation

/// One rabbitmq-c connection with one open channel.
///
/// Every call blocks and must run on the one thread that owns the connection
/// (`AMQPConnectionThread`); this type is deliberately not `Sendable`.
final class AMQPWire {
    static let channel: amqp_channel_t = 1

    private let state: amqp_connection_state_t
    private var isClosed = false

    /// Opens a TCP connection, logs in and opens channel 1.
    init(endpoint: AMQPEndpoint, name: String, heartbeatSeconds: Int32, connectTimeout: Duration) throws(AMQPError) {
        guard let state = amqp_new_connection() else {
            throw .connectFailed("amqp_new_connection returned NULL")
        }
        self.state = state
        // From here on every stored property is set, so a throw runs `deinit`,
        // which frees the connection: no explicit destroy on these paths.
        guard let socket = amqp_tcp_socket_new(state) else {
            throw .connectFailed("amqp_tcp_socket_new returned NULL")
        }
        var timeout = timeval(duration: connectTimeout)
        let opened = amqp_socket_open_noblock(socket, endpoint.host, Int32(endpoint.port), &timeout)
        guard opened == AMQP_STATUS_OK.rawValue else {
            throw .connectFailed("TCP connect to \(endpoint.host):\(endpoint.port) failed: \(Self.describe(status: opened))")
        }
        // Synchronous methods (login, declare, bind, qos) must not wait forever on a
        // broker that accepted the TCP connection but does not answer: the thread
        // would never see a stop request.
        var rpcTimeout = timeval(duration: .seconds(15))
        amqp_set_rpc_timeout(state, &rpcTimeout)
        let login = parley_amqp_login_plain(
            state,
            endpoint.virtualHost,
            0,
            131_072,
            heartbeatSeconds,
            endpoint.user,
            endpoint.password,
            name
        )
        try Self.check(login, doing: "login as \(endpoint.user) to vhost \(endpoint.virtualHost)")
        amqp_channel_open(state, Self.channel)
        try Self.check(amqp_get_rpc_reply(state), doing: "channel.open")
    }

    deinit {
        if !isClosed { amqp_destroy_connection(state) }
    }

    var socketDescriptor: Int32 { amqp_get_sockfd(state) }

    /// Whether a frame can be read without waiting on the socket.
    var hasBufferedInput: Bool {
        amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0
    }

    // MARK: Channel setup

    func enablePublisherConfirms() throws(AMQPError) {
        amqp_confirm_select(state, Self.channel)
        try Self.check(amqp_get_rpc_reply(state), doing: "confirm.select")
    }

    func setPrefetch(_ count: UInt16) throws(AMQPError) {
        amqp_basic_qos(state, Self.channel, 0, count, 0)
        try Self.check(amqp_get_rpc_reply(state), doing: "basic.qos prefetch=\(count)")
    }

    func declare(exchange: AMQPExchange) throws(AMQPError) {
        withAMQPBytes(exchange.name, exchange.kind.rawValue) { name, kind in
            AMQPTable.with(exchange.arguments) { table in
                _ = amqp_exchange_declare(state, Self.channel, name, kind, 0, exchange.durable ? 1 : 0, 0, 0, table)
            }
        }
        try Self.check(amqp_get_rpc_reply(state), doing: "exchange.declare \(exchange.name)")
    }

    func declare(queue: AMQPQueue) throws(AMQPError) {
        withAMQPBytes(queue.name) { name in
            AMQPTable.with(queue.arguments) { table in
                _ = amqp_queue_declare(
                    state,
                    Self.channel,
                    name,
                    0,
                    queue.durable ? 1 : 0,
                    queue.exclusive ? 1 : 0,
                    queue.autoDelete ? 1 : 0,
                    table
                )
            }
        }
        try Self.check(amqp_get_rpc_reply(state), doing: "queue.declare \(queue.name)")
    }

    func bind(queue: String, exchange: String, routingKey: String) throws(AMQPError) {
        withAMQPBytes(queue, exchange, routingKey) { queue, exchange, routingKey in
            _ = amqp_queue_bind(state, Self.channel, queue, exchange, routingKey, AMQPTable.empty)
        }
        try Self.check(amqp_get_rpc_reply(state), doing: "queue.bind \(queue) to \(exchange) key \(routingKey)")
    }

    func unbind(queue: String, exchange: String, routingKey: String) throws(AMQPError) {
        withAMQPBytes(queue, exchange, routingKey) { queue, exchange, routingKey in
            _ = amqp_queue_unbind(state, Self.channel, queue, exchange, routingKey, AMQPTable.empty)
        }
        try Self.check(amqp_get_rpc_reply(state), doing: "queue.unbind \(queue) from \(exchange) key \(routingKey)")
    }

    func consume(queue: String, consumerTag: String, autoAck: Bool) throws(AMQPError) {
        withAMQPBytes(queue, consumerTag) { queue, consumerTag in
            _ = amqp_basic_consume(state, Self.channel, queue, consumerTag, 0, autoAck ? 1 : 0, 0, AMQPTable.empty)
        }
        try Self.check(amqp_get_rpc_reply(state), doing: "basic.consume \(queue)")
    }

    // MARK: Messages

    func publish(_ message: AMQPOutgoingMessage) throws(AMQPError) {
        var properties = amqp_basic_properties_t()
        properties._flags = PARLEY_PROPS_DELIVERY_MODE | PARLEY_PROPS_TIMESTAMP
        properties.delivery_mode = message.persistent ? 2 : 1
        properties.timestamp = UInt64(Date().timeIntervalSince1970)
        if !message.contentType.isEmpty { properties._flags |= PARLEY_PROPS_CONTENT_TYPE }
        if !message.messageID.isEmpty { properties._flags |= PARLEY_PROPS_MESSAGE_ID }
        if !message.type.isEmpty { properties._flags |= PARLEY_PROPS_TYPE }
        if !message.headers.isEmpty { properties._flags |= PARLEY_PROPS_HEADERS }
        let status: Int32 = withAMQPBytes(message.exchange, message.routingKey) { exchange, routingKey in
            withAMQPBytes(message.contentType, message.messageID, message.type) { contentType, messageID, type in
                AMQPTable.with(message.headers) { headers in
                    message.body.withUnsafeBytes { body in
                        properties.content_type = contentType
                        properties.message_id = messageID
                        properties.type = type
                        properties.headers = headers
                        let bytes = amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress))
                        return amqp_basic_publish(
                            state,
                            Self.channel,
                            exchange,
                            routingKey,
                            message.mandatory ? 1 : 0,
                            0,
                            &properties,
                            bytes
                        )
                    }
                }
            }
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            throw .connectionLost("basic.publish to \(message.exchange) failed: \(Self.describe(status: status))")
        }
    }

    func ack(deliveryTag: UInt64) throws(AMQPError) {
        let status = amqp_basic_ack(state, Self.channel, deliveryTag, 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw .connectionLost("basic.ack failed: \(Self.describe(status: status))")
        }
    }

    func reject(deliveryTag: UInt64, requeue: Bool) throws(AMQPError) {
        let status = amqp_basic_reject(state, Self.channel, deliveryTag, requeue ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw .connectionLost("basic.reject failed: \(Self.describe(status: status))")
        }
    }

    // MARK: Incoming frames

    /// Reads the next frame that is already available (or arrives within `timeout`),
    /// or returns nil. Heartbeats are sent and checked inside this call.
    func nextFrame(timeout: Duration) throws(AMQPError) -> AMQPIncomingFrame? {
        defer { amqp_maybe_release_buffers(state) }
        var frame = amqp_frame_t()
        var wait = timeval(duration: timeout)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &wait)
        if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
        guard status == AMQP_STATUS_OK.rawValue else {
            throw .connectionLost("reading from the broker failed: \(Self.describe(status: status))")
        }
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else {
            // Header and body frames are read together with their method below.
            return .other
        }
        let method = frame.payload.method
        switch method.id {
        case PARLEY_BASIC_DELIVER:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let tag = deliver.delivery_tag
            let redelivered = deliver.redelivered != 0
            let routingKey = String(amqpBytes: deliver.routing_key)
            let exchange = String(amqpBytes: deliver.exchange)
            let message = try readMessage(doing: "reading a delivery")
            return .delivery(
                AMQPReceivedMessage(
                    deliveryTag: tag,
                    redelivered: redelivered,
                    exchange: exchange,
                    routingKey: routingKey,
                    messageID: message.messageID,
                    type: message.type,
                    headers: message.headers,
                    body: message.body
                )
            )
        case PARLEY_BASIC_ACK:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            return .confirm(deliveryTag: ack.delivery_tag, multiple: ack.multiple != 0, acked: true)
        case PARLEY_BASIC_NACK:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            return .confirm(deliveryTag: nack.delivery_tag, multiple: nack.multiple != 0, acked: false)
        case PARLEY_BASIC_RETURN:
            let returned = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let reason = "\(returned.reply_code) \(String(amqpBytes: returned.reply_text))"
            let message = try readMessage(doing: "reading a returned message")
            return .returned(messageID: message.messageID, reason: reason)
        case PARLEY_BASIC_CANCEL:
            return .consumerCancelled
        case PARLEY_CHANNEL_CLOSE:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            throw .channelClosed(code: close.reply_code, text: String(amqpBytes: close.reply_text))
        case PARLEY_CONNECTION_CLOSE:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            throw .connectionLost("the broker closed the connection: \(close.reply_code) \(String(amqpBytes: close.reply_text))")
        case PARLEY_CONNECTION_BLOCKED:
            return .blocked(true)
        case PARLEY_CONNECTION_UNBLOCKED:
            return .blocked(false)
        default:
            return .other
        }
    }

    private func readMessage(doing action: String) throws(AMQPError) -> (messageID: String, type: String, headers: [String: String], body: [UInt8]) {
        var message = amqp_message_t()
        let reply = amqp_read_message(state, Self.channel, &message, 0)
        try Self.check(reply, doing: action)
        defer { amqp_destroy_message(&message) }
        let flags = message.properties._flags
        let messageID = flags & PARLEY_PROPS_MESSAGE_ID != 0 ? String(amqpBytes: message.properties.message_id) : ""
        let type = flags & PARLEY_PROPS_TYPE != 0 ? String(amqpBytes: message.properties.type) : ""
        let headers = flags & PARLEY_PROPS_HEADERS != 0 ? AMQPTable.strings(in: message.properties.headers) : [:]
        let body: [UInt8]
        if message.body.len > 0, let pointer = message.body.bytes {
            body = Array(UnsafeRawBufferPointer(start: pointer, count: message.body.len))
        } else {
            body = []
        }
        return (messageID, type, headers, body)
    }

    /// Closes the channel and connection politely, then frees the connection.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        _ = amqp_channel_close(state, Self.channel, Int32(AMQP_REPLY_SUCCESS))
        _ = amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
        amqp_destroy_connection(state)
    }

    // MARK: Errors

    private static func check(_ reply: amqp_rpc_reply_t, doing action: String) throws(AMQPError) {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw .connectionLost("\(action) failed: \(describe(status: reply.library_error))")
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch reply.reply.id {
            case PARLEY_CONNECTION_CLOSE:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                throw .rejectedByBroker("\(action): connection closed by broker: \(close.reply_code) \(String(amqpBytes: close.reply_text))")
            case PARLEY_CHANNEL_CLOSE:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                throw .channelClosed(code: close.reply_code, text: "\(action): \(String(amqpBytes: close.reply_text))")
            default:
                throw .rejectedByBroker("\(action): unexpected server method \(reply.reply.id)")
            }
        default:
            throw .connectionLost("\(action): no reply from the broker")
        }
    }

    private static func describe(status: Int32) -> String {
        guard let text = amqp_error_string2(status) else { return "status \(status)" }
        return String(cString: text)
    }
}

/// What `AMQPWire.nextFrame` found.
enum AMQPIncomingFrame {
    case delivery(AMQPReceivedMessage)
    case confirm(deliveryTag: UInt64, multiple: Bool, acked: Bool)
    case returned(messageID: String, reason: String)
    case consumerCancelled
    case blocked(Bool)
    case other
}

struct AMQPReceivedMessage: Sendable {
    var deliveryTag: UInt64
    var redelivered: Bool
    var exchange: String
    var routingKey: String
    var messageID: String
    var type: String
    var headers: [String: String]
    var body: [UInt8]
}

extension String {
    init(amqpBytes bytes: amqp_bytes_t) {
        guard bytes.len > 0, let pointer = bytes.bytes else {
            self = ""
            return
        }
        self = String(decoding: UnsafeRawBufferPointer(start: pointer, count: bytes.len), as: UTF8.self)
    }
}

extension timeval {
    init(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
