import Hummingbird

/// Counts and times every HTTP request by route (the matched pattern, so no ids),
/// method and status: `parley_http_requests_total`, `parley_http_request_duration_seconds`.
public struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        // The method is the client's text: only the standard ones become label values.
        let method = ParleyMetrics.standardHTTPMethods.contains(request.method.rawValue) ? request.method.rawValue : "other"
        do {
            let response = try await next(request, context)
            record(route: context.endpointPath, method: method, status: Int(response.status.code), started: started)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            record(route: context.endpointPath, method: method, status: Int(status), started: started)
            throw error
        }
    }

    private func record(route: String?, method: String, status: Int, started: ContinuousClock.Instant) {
        let route = route ?? "unmatched"
        ParleyMetrics.httpRequests.increment(by: 1, [("route", route), ("method", method), ("status", String(status))])
        ParleyMetrics.httpDuration.record(started.duration(to: .now), [("route", route), ("method", method)])
    }
}
