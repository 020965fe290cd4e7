import FlashSale
import FlashSaleJournal
import InventoryActor
import NIOCore

/// The buyer HTTP API of the contract (§2, §3): routes a request to the engine and renders
/// the answer as the contract's JSON. No sockets here; `HTTPServer` feeds it.
public struct BuyerAPI: HTTPResponder {
    let engine: SaleEngine
    /// The buyer-token keys and the admin token in force (the engine's, in the daemon).
    let credentials: Credentials
    let listening: @Sendable () -> Bool
    /// Trusted proxies and per-IP rate limits; nil: the peer is the client and nothing is limited.
    let guards: BuyerGuards?
    let metrics: FlashSaleMetrics?
    /// An API over `engine`, verifying buyer tokens and the admin token with the engine's
    /// credentials (replaced by a reload) and applying `guards`; `listening` tells `/readyz`
    /// whether every listener (HTTP and ops) is open; `metrics`, if any, is served at `GET /metrics`.
    public init(
        engine: SaleEngine, guards: BuyerGuards? = nil, listening: @escaping @Sendable () -> Bool = { true },
        metrics: FlashSaleMetrics? = nil
    ) {
        self.init(engine: engine, credentials: engine.credentials, guards: guards, listening: listening, metrics: metrics)
    }

    /// An API verifying buyer tokens with `userTokenSecret` and the admin token against
    /// `adminSecret` instead of the engine's credentials (for tests).
    public init(
        engine: SaleEngine, userTokenSecret: String, guards: BuyerGuards? = nil,
        listening: @escaping @Sendable () -> Bool = { true }, metrics: FlashSaleMetrics? = nil, adminSecret: String? = nil
    ) {
        let credentials = Credentials(Secrets(userToken: userTokenSecret, payment: "-", ops: "-", admin: adminSecret))
        self.init(engine: engine, credentials: credentials, guards: guards, listening: listening, metrics: metrics)
    }

    private init(
        engine: SaleEngine, credentials: Credentials, guards: BuyerGuards?, listening: @escaping @Sendable () -> Bool,
        metrics: FlashSaleMetrics?
    ) {
        self.engine = engine
        self.credentials = credentials
        self.guards = guards
        self.listening = listening
        self.metrics = metrics
    }

    /// Health checks, answered on the event loop.
    public func respondImmediately(to request: APIRequest) -> APIResponse? {
        switch request.route.check(method: request.method) {
        case .allowed(.healthz):
            return APIResponse(status: 200, body: Array(#"{"status":"ok"}"#.utf8))
        case .allowed(.readyz):
            let ready = engine.isReady && listening()
            return APIResponse(status: ready ? 200 : 503, body: Array((ready ? #"{"status":"ready"}"# : #"{"status":"recovering"}"#).utf8))
        case .allowed(.metrics) where metrics == nil:
            return APIResponse(rejection: .routeNotFound)
        // A buyer POST passes the token and rate checks first, whatever its path (async path).
        case .notAllowed(let allow) where !Self.isBuyerPost(request):
            return APIResponse(rejection: .methodNotAllowed, allow: allow)
        case .notFound where !Self.isBuyerPost(request):
            return APIResponse(rejection: .routeNotFound)
        case .allowed, .notAllowed, .notFound:
            return nil
        }
    }

    /// Whether `request` is a buyer `POST /v1/...` (any but `/v1/payments/notify`, routes or
    /// not): it passes the token check and the client's bucket before anything else (§3.2).
    static func isBuyerPost(_ request: APIRequest) -> Bool {
        request.method == "POST" && request.route.template != .paymentNotify && request.path.utf8.starts(with: "/v1/".utf8)
            && !request.path.utf8.starts(with: "/v1/admin/".utf8)
    }

    /// The metrics scrape, besides the health checks: still answered when the connection cap is reached.
    public func isProbe(_ request: APIRequest) -> Bool {
        request.route.template == .metrics && metrics != nil
    }

    /// The buyer writes and payment notifications, decided on the connection's loop (see
    /// `SaleEngine.placeOrder(_:on:onReserved:answer:)`): no task, the answer written from the
    /// loop once durable. Reads and refusals before any route go async (false). The checks keep
    /// the contract's order: token, rate limit, then the route's own.
    public func respond(to request: APIRequest, on loop: any EventLoop, reply: @escaping (APIResponse) -> Void) -> Bool {
        guard request.method == "POST", engine.runs(on: loop), case .allowed(let template) = request.route.check(method: "POST")
        else { return false }
        let id = String(request.route.parameter)
        switch template {
        case .eventOrders:
            return placeOrder(request, on: loop, reply: reply)
        case .paymentNotify:
            guard engine.enterGate() else {
                reply(APIResponse(rejection: SaleEngine.notReady))
                return true
            }
            engine.notifyPayment(
                timestamp: request.payTimestamp, nonce: request.payNonce, signature: request.paySignature, body: request.body, on: loop
            ) { [engine] result in
                engine.leaveGate()
                reply(Self.render(result))
            }
            return true
        case .orderCancel, .eventGroups, .groupJoin, .couponClaims:
            admitBuyerPost(request, on: loop, reply: reply) { user, client, answer in
                switch template {
                case .orderCancel:
                    engine.cancelOrder(id, user: user, on: loop) { answer(Self.render($0, status: 200)) }
                case .eventGroups:
                    switch GroupBody.parse(request.body) {
                    case .success(let body): engine.openGroup(user: user, event: id, sku: body.sku, on: loop) { answer(Self.render($0)) }
                    case .failure(let rejection): answer(APIResponse(rejection: rejection))
                    }
                case .groupJoin:
                    engine.joinGroup(id, user: user, on: loop) { answer(Self.render($0)) }
                default:
                    let counted = Self.couponClient(client)
                    engine.claimCoupon(batch: id, user: user, clientIP: counted, on: loop) { answer(Self.render($0)) }
                }
            }
            return true
        default:
            return false
        }
    }

    /// A buyer POST on the loop: through the gate and `admitBuyerPost`, then `route` with the
    /// verified user and the client; its answer leaves the gate and is replied.
    private func admitBuyerPost(
        _ request: APIRequest, on loop: any EventLoop, reply: @escaping (APIResponse) -> Void,
        _ route: (_ user: String, _ client: ClientAddress, _ answer: @escaping (APIResponse) -> Void) -> Void
    ) {
        guard engine.enterGate() else { return reply(APIResponse(rejection: SaleEngine.notReady)) }
        let client = clientAddress(of: request)
        switch admitBuyerPost(request, client: client) {
        case .success(let user):
            route(user, client) { [engine] response in
                engine.leaveGate()
                reply(response)
            }
        case .failure(let rejection):
            engine.leaveGate()
            reply(APIResponse(rejection: rejection))
        }
    }

    /// A seckill order on the connection's loop. With an `Idempotency-Key`, the answer is
    /// recorded with the order as one journal unit; a repeat while the first is still running
    /// (a double tap) waits for it in a task.
    private func placeOrder(_ request: APIRequest, on loop: any EventLoop, reply: @escaping (APIResponse) -> Void) -> Bool {
        guard request.idempotencyKey.map(IdempotencyStore.isValidKey) != false,
            case .success(let body) = OrderBody.parse(request.body)
        else { return false }
        guard engine.enterGate() else {
            reply(APIResponse(rejection: SaleEngine.notReady))
            return true
        }
        let engine = self.engine
        let user: String
        switch admitBuyerPost(request, client: clientAddress(of: request)) {
        case .success(let found): user = found
        case .failure(let rejection):
            engine.leaveGate()
            reply(APIResponse(rejection: rejection))
            return true
        }
        var claim: IdempotencyClaim?
        if let key = request.idempotencyKey {
            let digest = IdempotencyStore.digest(method: request.method, path: request.path, body: request.body)
            switch engine.idempotency.beginNow(user: user, key: key, digest: digest, nowMs: engine.clock.nowMs()) {
            case .decided(.proceed(let admitted)): claim = admitted
            case .decided(.replay(let answer)):
                engine.leaveGate()
                reply(APIResponse(status: answer.status, body: answer.body))
                return true
            case .decided(.mismatch):
                engine.leaveGate()
                reply(APIResponse(rejection: .idempotencyMismatch))
                return true
            case .decided(.busy):
                engine.leaveGate()
                reply(APIResponse(rejection: .overloaded(retryAfterSeconds: HTTPLimits.overloadedRetryAfterSeconds)))
                return true
            case .firstStillRunning:
                let waited = loop.makePromise(of: APIResponse.self)
                waited.completeWithTask { await self.placeOrder(request, event: String(request.route.parameter), user: user) }
                waited.futureResult.assumeIsolated().whenSuccess { response in
                    engine.leaveGate()
                    reply(response)
                }
                return true
            }
        }
        let order = PlaceOrderRequest(user: user, event: String(request.route.parameter), sku: body.sku, qty: body.qty, coupon: body.coupon)
        var onReserved: (@Sendable (Order) -> JournalRecord?)?
        if let claim {
            let clock = engine.clock
            onReserved = { order in claim.record(status: 201, body: Self.render(order), nowMs: clock.nowMs()) }
        }
        let taken = engine.placeOrder(order, on: loop, onReserved: onReserved) { result in
            engine.leaveGate()
            let response: APIResponse
            switch result {
            case .success(let order):
                // Rendered once: the body journaled for a retry is the body sent.
                response = APIResponse(status: 201, body: claim?.journaledAnswer?.body ?? Self.render(order))
            case .failure(let rejection):
                response = APIResponse(rejection: rejection)
            }
            if let claim { self.finish(claim, response) }
            reply(response)
        }
        precondition(taken, "the engine refused a loop it runs on")
        return true
    }

    /// Every other route.
    public func respond(to request: APIRequest) async -> APIResponse {
        let check = request.route.check(method: request.method)
        if check == .allowed(.metrics), let metrics {
            return APIResponse(
                status: 200, body: await metrics.render(engine: engine, ready: engine.isReady && listening()),
                contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        var request = request
        let client = clientAddress(of: request)
        request.clientIP = client.description
        // Through the engine's gate: refused while recovering or rebuilding after a failed commit.
        let admitted = await engine.admitted { await route(request, check, client: client) }
        return admitted ?? APIResponse(rejection: SaleEngine.notReady)
    }

    /// The `/v1/...` routes, admitted by the engine's gate.
    private func route(_ request: APIRequest, _ check: APIRoute.MethodCheck, client: ClientAddress) async -> APIResponse {
        // Every buyer POST passes the token check, then its client's bucket, before any route;
        // the routes take the verified user from here (the token is checked once).
        var buyer = ""
        if Self.isBuyerPost(request) {
            switch admitBuyerPost(request, client: client) {
            case .success(let user): buyer = user
            case .failure(let rejection): return APIResponse(rejection: rejection)
            }
        }
        let template: APIRoute.Template
        switch check {
        case .allowed(let found): template = found
        case .notAllowed(let allow): return APIResponse(rejection: .methodNotAllowed, allow: allow)
        case .notFound: return APIResponse(rejection: .routeNotFound)
        }
        let id = String(request.route.parameter)
        switch template {
        case .paymentNotify: return await notifyPayment(request)
        case .events: return listEvents()
        case .event: return await showEvent(id)
        case .eventOrders: return await placeOrder(request, event: id, user: buyer)
        case .order: return await showOrder(request, id: id)
        case .orderCancel: return await cancelOrder(request, id: id, user: buyer)
        case .eventGroups: return await openGroup(request, event: id, user: buyer)
        case .groupJoin: return await joinGroup(request, id: id, user: buyer)
        case .group: return await showGroup(request, id: id)
        case .couponClaims: return await claimCoupon(request, batch: id, user: buyer)
        case .adminChanges: return await listChanges(request)
        case .adminOrders: return await listOrders(request)
        case .adminEvents, .adminEvent, .adminEventPause, .adminEventResume, .adminRestock, .adminCoupons:
            return await adminWrite(request, template, client: client)
        case .openAPI: return Self.openAPIDocument
        case .healthz, .readyz, .metrics: return APIResponse(rejection: .routeNotFound)
        }
    }

    // MARK: Routes

    private func placeOrder(_ request: APIRequest, event: String, user: String) async -> APIResponse {
        return await idempotent(request, user: user) { claim in
            await placeOrder(request, event: event, user: user, claim: claim)
        }
    }

    private func placeOrder(_ request: APIRequest, event: String, user: String, claim: IdempotencyClaim?) async -> APIResponse {
        let body: OrderBody
        switch OrderBody.parse(request.body) {
        case .success(let parsed): body = parsed
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
        var onReserved: (@Sendable (Order) -> JournalRecord?)?
        if let claim {
            let clock = engine.clock
            onReserved = { order in claim.record(status: 201, body: Self.render(order), nowMs: clock.nowMs()) }
        }
        let result = await engine.placeOrder(
            PlaceOrderRequest(user: user, event: event, sku: body.sku, qty: body.qty, coupon: body.coupon), onReserved: onReserved)
        switch result {
        case .success(let order): return APIResponse(status: 201, body: claim?.journaledAnswer?.body ?? Self.render(order))
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
    }

    private func showOrder(_ request: APIRequest, id: String) async -> APIResponse {
        let user: String
        switch authenticate(request) {
        case .success(let found): user = found
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
        let found: Order?
        switch await engine.findOrder(id, user: user) {
        case .success(let order): found = order
        case .failure(let failure): return APIResponse(rejection: failure)
        }
        guard let order = found else { return APIResponse(rejection: .unknownOrder) }
        if let failure = await engine.settled() { return APIResponse(rejection: failure) }
        return APIResponse(status: 200, body: Self.render(order))
    }

    private func cancelOrder(_ request: APIRequest, id: String, user: String) async -> APIResponse {
        Self.render(await engine.cancelOrder(id, user: user), status: 200)
    }

    private func notifyPayment(_ request: APIRequest) async -> APIResponse {
        Self.render(await engine.notifyPayment(
            timestamp: request.payTimestamp, nonce: request.payNonce, signature: request.paySignature, body: request.body))
    }

    /// The answer to a payment notification.
    static func render(_ result: Result<PaymentAck, Rejection>) -> APIResponse {
        switch result {
        case .failure(let rejection): return APIResponse(rejection: rejection)
        case .success(let ack):
            let body = JSONWriter.object { json in
                json.field("status", ack.status.description)
                if ack.duplicate { json.field("duplicate", true) }
                if let refund = ack.refundTransaction { json.field("refund", refund) }
                if ack.late { json.field("late", true) }
            }
            return APIResponse(status: 200, body: body)
        }
    }

    /// The answer to an order's change: the order with `status`, or the refusal.
    static func render(_ result: Result<Order, Rejection>, status: Int) -> APIResponse {
        switch result {
        case .success(let order): APIResponse(status: status, body: render(order))
        case .failure(let rejection): APIResponse(rejection: rejection)
        }
    }

    private func listEvents() -> APIResponse {
        let nowMs = engine.clock.nowMs()
        let body = JSONWriter.object { json in
            json.field("server_time", rfc3339(ms: nowMs))
            json.array("events") { json in
                for event in engine.listedEvents(nowMs: nowMs) {
                    json.object { json in
                        json.field("id", event.config.id)
                        json.field("kind", event.config.kind.rawValue)
                        json.field("state", engine.catalog.state(of: event, nowMs: nowMs).rawValue)
                        json.field("starts_at", rfc3339(ms: event.config.startsAtMs))
                        json.field("ends_at", rfc3339(ms: event.config.endsAtMs))
                    }
                }
            }
        }
        return APIResponse(status: 200, body: body, cacheControl: Self.publicReadCacheControl)
    }

    /// The public event reads may be cached by a CDN for up to 1 s (§3.1).
    static let publicReadCacheControl = "public, max-age=1"

    private func showEvent(_ id: String) async -> APIResponse {
        guard let event = engine.catalog.event(id) else { return APIResponse(rejection: .unknownEvent) }
        let items = await engine.items(of: event)
        let groupsFormed = await engine.groupsFormed(event)
        if let failure = await engine.settled() { return APIResponse(rejection: failure) }
        let nowMs = engine.clock.nowMs()
        let body = Self.renderEvent(
            event.config, state: engine.catalog.state(of: event, nowMs: nowMs), items: items, groupsFormed: groupsFormed, nowMs: nowMs)
        return APIResponse(status: 200, body: body, cacheControl: Self.publicReadCacheControl)
    }

    /// The event object of §3.3: the event, its state at `nowMs` and each item's counters.
    static func renderEvent(_ event: EventConfig, state: EventState, items: [ItemView], groupsFormed: Int, nowMs: Int64) -> [UInt8] {
        JSONWriter.object(capacity: 512) { json in
            json.field("id", event.id)
            json.field("kind", event.kind.rawValue)
            json.field("state", state.rawValue)
            json.field("starts_at", rfc3339(ms: event.startsAtMs))
            json.field("ends_at", rfc3339(ms: event.endsAtMs))
            json.field("server_time", rfc3339(ms: nowMs))
            json.field("groups_formed", groupsFormed)
            json.array("items") { json in
                for view in items {
                    json.object { json in
                        json.field("sku", view.item.sku)
                        json.field("name", view.item.name)
                        json.field("price", view.item.priceFen)
                        if let groupPrice = view.item.groupPriceFen { json.field("group_price", groupPrice) }
                        if let groupSize = view.item.groupSize { json.field("group_size", groupSize) }
                        json.field("limit_per_user", Int(view.item.limitPerUser))
                        json.field("total", view.counters.total)
                        json.field("available", view.counters.available)
                        json.field("reserved", view.counters.reserved)
                        json.field("sold", view.counters.sold)
                    }
                }
            }
        }
    }

    // MARK: Helpers

    func authenticate(_ request: APIRequest) -> Result<String, Rejection> {
        switch credentials.current.tokens.verify(authorization: request.authorization, nowSeconds: engine.clock.nowMs() / 1000) {
        case .success(let user): return .success(user)
        case .failure(let reason): return .failure(.unauthorized("\(reason)"))
        }
    }

    /// The contract's order object.
    static func render(_ order: Order) -> [UInt8] {
        JSONWriter.object { json in ChangeFeedJSON.writeOrder(order, into: &json, full: false) }
    }
}

extension APIResponse {
    /// The contract's error body for `rejection`, with its status and `Retry-After`; `allow`
    /// for a `405`.
    public init(rejection: Rejection, allow: String? = nil) {
        let body = JSONWriter.object { json in
            json.field("error", rejection.code)
            json.field("message", rejection.message)
            if case .notStarted(let startsAtMs) = rejection { json.field("starts_at", rfc3339(ms: startsAtMs)) }
        }
        self.init(status: rejection.status, body: body, retryAfterSeconds: rejection.retryAfterSeconds)
        self.rejectionCode = rejection.code
        self.allow = allow
    }
}
