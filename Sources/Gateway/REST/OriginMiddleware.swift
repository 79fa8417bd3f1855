import Hummingbird

/// Refuses HTTP requests that a browser sent from a page of an origin
/// `ALLOWED_ORIGINS` does not list: 403 `origin_not_allowed`. Without it, with
/// authentication off, any page a person visits could start sessions and send
/// messages as them with a form or a `text/plain` fetch. Requests without `Origin`
/// (curl, apps, same-origin GETs) pass. `/ws` is checked after the upgrade instead,
/// so that a browser can read why (an error frame and close code 1008).
struct OriginMiddleware<Context: RequestContext>: RouterMiddleware {
    let allows: @Sendable (String?) -> Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path != "/ws", let origin = request.headers[.origin], !allows(origin) {
            throw GatewayHTTPError(
                status: .forbidden,
                code: .originNotAllowed,
                message: "this gateway does not take requests from pages of \(origin) (ALLOWED_ORIGINS)"
            )
        }
        return try await next(request, context)
    }
}
