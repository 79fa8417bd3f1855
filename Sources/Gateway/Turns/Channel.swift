/// How a turn reached Parley: the `channel` label of the gateway's turn metrics (a
/// fixed set, so a small label).
enum Channel: String, Sendable, CaseIterable {
    /// A WebSocket from a web page (the handshake carried `Origin`): the chat page, or
    /// another site's page the origin rules let in.
    case web
    /// A WebSocket from anything else (wscat, an app).
    case websocket
    case rest
    case grpc
    /// A WhatsApp message: the Cloud API's webhook, or the older bot's `POST /whatsapp`.
    case whatsapp
}
