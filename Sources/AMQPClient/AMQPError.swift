/// What can go wrong at the broker boundary. Each case says what failed in words
/// an operator can act on; the edges map them to client-facing codes.
public enum AMQPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No connection to the broker right now (the last failure is in the text).
    case notConnected(String)
    /// Opening the TCP connection or logging in failed.
    case connectFailed(String)
    /// The connection broke while an operation was in flight.
    case connectionLost(String)
    /// The broker closed the channel (e.g. a declaration that does not match).
    case channelClosed(code: UInt16, text: String)
    /// The broker refused the operation.
    case rejectedByBroker(String)
    /// The broker answered a publish with basic.nack (e.g. queue full with reject-publish).
    case nacked(exchange: String, routingKey: String)
    /// A mandatory publish could not be routed to any queue.
    case unroutable(exchange: String, routingKey: String, reason: String)
    /// No confirm arrived in time.
    case confirmTimeout(exchange: String, seconds: Int)
    /// The delivery came on a connection that has since been replaced; the broker
    /// already returned it to its queue.
    case staleDelivery(String)
    /// The client has been shut down.
    case shutDown

    /// Whether a publish that failed this way may nevertheless have reached its queue
    /// (the frame was written but no confirm came back).
    public var publishOutcomeIsUnknown: Bool {
        switch self {
        case .connectionLost, .confirmTimeout, .channelClosed: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .notConnected(let why): "not connected to the broker (\(why))"
        case .connectFailed(let why): "could not connect to the broker: \(why)"
        case .connectionLost(let why): "broker connection lost: \(why)"
        case .channelClosed(let code, let text): "the broker closed the channel: \(code) \(text)"
        case .rejectedByBroker(let why): "the broker refused: \(why)"
        case .nacked(let exchange, let key): "the broker nacked a publish to \(exchange) (key \(key)): queue full or unavailable"
        case .unroutable(let exchange, let key, let reason): "a publish to \(exchange) (key \(key)) was returned: \(reason)"
        case .confirmTimeout(let exchange, let seconds): "no publisher confirm from the broker within \(seconds) s for \(exchange)"
        case .staleDelivery(let why): why
        case .shutDown: "the broker client is shut down"
        }
    }
}
