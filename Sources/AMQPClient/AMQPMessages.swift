/// A message to publish.
public struct AMQPOutgoingMessage: Sendable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var messageID: String
    public var type: String
    public var contentType: String
    public var persistent: Bool
    public var mandatory: Bool
    public var headers: [String: AMQPTableValue]

    public init(
        exchange: String,
        routingKey: String,
        body: [UInt8],
        messageID: String = "",
        type: String = "",
        contentType: String = "application/json",
        persistent: Bool = true,
        mandatory: Bool = false,
        headers: [String: AMQPTableValue] = [:]
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.messageID = messageID
        self.type = type
        self.contentType = contentType
        self.persistent = persistent
        self.mandatory = mandatory
        self.headers = headers
    }
}

/// A message delivered to a consumer. Settle it with the consumer's `ack` or
/// `reject`; a delivery from a connection that has since been replaced cannot be
/// settled (the broker already returned it to the queue).
public struct AMQPDelivery: Sendable {
    public var deliveryTag: UInt64
    /// Which connection of the consumer received it (changes on every reconnect).
    public var connectionGeneration: Int
    public var redelivered: Bool
    public var exchange: String
    public var routingKey: String
    public var messageID: String
    public var type: String
    public var headers: [String: String]
    public var body: [UInt8]
}
