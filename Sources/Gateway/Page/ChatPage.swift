import HTTPTypes
import Hummingbird

/// The web chat page at `/`: one HTML file, its script and its style sheet, embedded
/// in the binary (`Assets/chat.*`). The page talks to the gateway over the same
/// `/ws` and REST API as any client; nothing is loaded from another site, and the
/// content security policy says so to the browser.
struct ChatPage: Sendable {
    /// Only this origin's files, scripts and sockets; no inline script or style, no
    /// framing by other sites.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/") { _, _ in Self.asset(EmbeddedAssets.chatHTML, type: "text/html; charset=utf-8") }
        router.get("/chat.js") { _, _ in Self.asset(EmbeddedAssets.chatJS, type: "text/javascript; charset=utf-8") }
        router.get("/chat.css") { _, _ in Self.asset(EmbeddedAssets.chatCSS, type: "text/css; charset=utf-8") }
    }

    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!

    static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: type,
                .contentSecurityPolicy: contentSecurityPolicy,
                .xContentTypeOptions: "nosniff",
                ChatPage.referrerPolicy: "no-referrer",
                // A new gateway version serves a new page at once.
                .cacheControl: "no-cache",
            ],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }
}
