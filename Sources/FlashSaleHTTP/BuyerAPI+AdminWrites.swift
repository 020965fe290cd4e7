import FlashSale
import FlashSaleJournal
import InventoryActor
import Logging

/// The admin API's writes (§7): create an event, pause and resume one, restock a SKU.
/// Each needs the admin token, passes the per-IP rate limit like every POST, takes
/// `Idempotency-Key`, answers 2xx only once durable, and is logged at `info` as `admin write`
/// (the audit trail: what, from which address, through which door, with what result).
extension BuyerAPI {
    /// Whose `Idempotency-Key`s the admin API's are: not a valid buyer id, so never a buyer's.
    static let adminIdempotencyUser = "#admin"

    /// One admin write, from the token check to the audit line.
    func adminWrite(_ request: APIRequest, _ template: APIRoute.Template, client: ClientAddress) async -> APIResponse {
        guard isAdmin(request) else { return APIResponse(rejection: Self.adminRefusal) }
        if let guards, case .limited(let seconds) = guards.rateLimiter.take(client, nowMs: engine.clock.nowMs()) {
            return APIResponse(rejection: .rateLimited(retryAfterSeconds: seconds))
        }
        let event = String(request.route.parameter), sku = String(request.route.secondParameter)
        let response = await idempotent(request, user: Self.adminIdempotencyUser) { claim in
            switch template {
            case .adminEvents: return await createEvent(request, claim: claim)
            case .adminEvent: return await editEvent(request, event: event, claim: claim)
            case .adminCoupons: return await createCouponBatch(request, claim: claim)
            case .adminEventPause: return await setPaused(event, true)
            case .adminEventResume: return await setPaused(event, false)
            default: return await restock(request, event: event, sku: sku, claim: claim)
            }
        }
        let target = sku.isEmpty ? event : "\(event) \(sku)"
        engine.audit.record(
            atMs: engine.clock.nowMs(), door: "admin", peer: "\(client)", what: template.label + (target.isEmpty ? "" : " " + target),
            result: response.rejectionCode ?? "ok")
        engine.logger.info(
            "admin write",
            metadata: [
                "door": "admin", "route": "\(template.label)", "event": "\(event)", "sku": "\(sku)", "peer": "\(client)",
                "status": "\(response.status)", "result": "\(response.rejectionCode ?? "ok")",
            ])
        return response
    }

    /// `POST /v1/admin/events`: an `events[]` entry as JSON → `201` the event as in §3.3 (a
    /// schedule's first day).
    private func createEvent(_ request: APIRequest, claim: IdempotencyClaim?) async -> APIResponse {
        let definition: AdminEventDefinition
        switch engine.checkNewEvent(json: request.body) {
        case .success(let checked): definition = checked
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
        guard let first = definition.events.first(where: { $0.endsAtMs > engine.clock.nowMs() }) ?? definition.events.first else {
            return APIResponse(rejection: .badRequest("schedule: no day of it falls within its horizon"))
        }
        let nowMs = engine.clock.nowMs()
        let items = first.items.map { ItemView(item: $0, counters: StockCounters(total: $0.stock, available: $0.stock, reserved: 0, sold: 0)) }
        let state: EventState = nowMs >= first.endsAtMs ? .ended : nowMs < first.startsAtMs ? .scheduled : .live
        let body = Self.renderEvent(first, state: state, items: items, groupsFormed: 0, nowMs: nowMs)
        let answer = claim?.record(status: 201, body: body, nowMs: nowMs)
        switch await engine.createEvent(definition, body: request.body, answer: answer) {
        case .success: return APIResponse(status: 201, body: body)
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
    }

    /// `PATCH /v1/admin/events/{event}`: names, `ends_at`, and before the start `starts_at`,
    /// prices and `limit_per_user` → `200` the event as in §3.3.
    private func editEvent(_ request: APIRequest, event: String, claim: IdempotencyClaim?) async -> APIResponse {
        let edited: EventConfig, base: EventConfig, entry: [UInt8]
        switch engine.checkEventEdit(id: event, json: request.body) {
        case .success(let checked): (edited, base, entry) = checked
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
        // The answer is rendered before the change (so it is journaled with it): the counters now.
        guard let current = engine.catalog.event(event) else { return APIResponse(rejection: .unknownEvent) }
        let views = await engine.items(of: current)
        let items = zip(edited.items, views).map { ItemView(item: $0.0, counters: $0.1.counters) }
        let nowMs = engine.clock.nowMs()
        let paused = engine.catalog.isPaused(event)
        let state: EventState = nowMs >= edited.endsAtMs ? .ended : nowMs < edited.startsAtMs ? .scheduled : paused ? .paused : .live
        let body = Self.renderEvent(edited, state: state, items: items, groupsFormed: await engine.groupsFormed(current), nowMs: nowMs)
        let answer = claim?.record(status: 200, body: body, nowMs: nowMs)
        switch await engine.editEvent(edited, from: base, entry: entry, answer: answer) {
        case .success: return APIResponse(status: 200, body: body)
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
    }

    /// `POST /v1/admin/coupons`: a `coupons[]` entry as JSON → `201` the batch.
    private func createCouponBatch(_ request: APIRequest, claim: IdempotencyClaim?) async -> APIResponse {
        let batch: CouponBatchConfig
        switch engine.checkNewCouponBatch(json: request.body) {
        case .success(let checked): batch = checked
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
        let body = JSONWriter.object { json in
            json.field("id", batch.id)
            json.field("total", batch.total)
            json.field("value", batch.valueFen)
            json.field("min_spend", batch.minSpendFen)
            json.field("per_user", batch.perUser)
            json.field("per_ip", batch.perIP)
            json.field("starts_at", rfc3339(ms: batch.startsAtMs))
            json.field("ends_at", rfc3339(ms: batch.endsAtMs))
            json.field("valid_for_seconds", batch.validForMs / 1_000)
        }
        let answer = claim?.record(status: 201, body: body, nowMs: engine.clock.nowMs())
        switch await engine.createCouponBatch(batch, body: request.body, answer: answer) {
        case .success: return APIResponse(status: 201, body: body)
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
    }

    /// `POST /v1/admin/events/{event}/pause` and `/resume` → `200 {"event", "paused", "state"}`.
    private func setPaused(_ event: String, _ paused: Bool) async -> APIResponse {
        switch await engine.setPaused(event, paused) {
        case .failure(let rejection): return APIResponse(rejection: rejection)
        case .success:
            let state = engine.catalog.event(event).map { engine.catalog.state(of: $0, nowMs: engine.clock.nowMs()) }
            return APIResponse(status: 200, body: JSONWriter.object { json in
                json.field("event", event)
                json.field("paused", paused)
                json.field("state", state?.rawValue ?? "ended")
            })
        }
    }

    /// `POST /v1/admin/events/{event}/items/{sku}/restock` `{"delta": N}` → `200` the SKU's counters.
    private func restock(_ request: APIRequest, event: String, sku: String, claim: IdempotencyClaim?) async -> APIResponse {
        guard case .object(let members)? = try? JSONParser.parse(request.body), members.count == 1,
            let delta = members.first(where: { $0.key == "delta" })?.value.intValue
        else {
            return APIResponse(rejection: .badRequest("body must be {\"delta\": N}, N a non-zero integer"))
        }
        let nowMs = engine.clock.nowMs()
        let render: @Sendable (StockCounters) -> [UInt8] = { counters in
            JSONWriter.object { json in
                json.field("event", event)
                json.field("sku", sku)
                json.field("total", counters.total)
                json.field("available", counters.available)
                json.field("reserved", counters.reserved)
                json.field("sold", counters.sold)
            }
        }
        var attach: (@Sendable (StockCounters) -> (any Sendable)?)?
        if let claim {
            attach = { @Sendable (counters: StockCounters) -> (any Sendable)? in
                claim.record(status: 200, body: render(counters), nowMs: nowMs)
            }
        }
        switch await engine.restock(event: event, sku: sku, delta: delta, attach: attach) {
        case .success(let counters): return APIResponse(status: 200, body: render(counters))
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
    }
}
