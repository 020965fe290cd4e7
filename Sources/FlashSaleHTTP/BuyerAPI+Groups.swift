import FlashSale
import InventoryActor

/// The group-buy (§3.5) and coupon (§3.6) routes of the buyer API.
extension BuyerAPI {
    /// `POST /v1/events/{event}/groups` `{"sku": S}` → 201 with the new group and the leader's order.
    /// (`user`: the token's, verified by `admitBuyerPost`.)
    func openGroup(_ request: APIRequest, event: String, user: String) async -> APIResponse {
        let body: GroupBody
        switch GroupBody.parse(request.body) {
        case .success(let parsed): body = parsed
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
        return Self.render(await engine.openGroup(user: user, event: event, sku: body.sku))
    }

    /// `POST /v1/groups/{group}/join` → 201 with the group and the new member's order.
    /// (`user`: the token's, verified by `admitBuyerPost`.)
    func joinGroup(_ request: APIRequest, id: String, user: String) async -> APIResponse {
        return Self.render(await engine.joinGroup(id, user: user))
    }

    /// `GET /v1/groups/{group}`.
    func showGroup(_ request: APIRequest, id: String) async -> APIResponse {
        if case .failure(let rejection) = authenticate(request) { return APIResponse(rejection: rejection) }
        let found: GroupView?
        switch await engine.findGroup(id) {
        case .success(let view): found = view
        case .failure(let failure): return APIResponse(rejection: failure)
        }
        guard let view = found else { return APIResponse(rejection: .unknownGroup) }
        if let failure = await engine.settled() { return APIResponse(rejection: failure) }
        let body = JSONWriter.object { json in
            json.field("group", view.group.id.description)
            json.field("event", view.group.key.event)
            json.field("sku", view.group.key.sku)
            json.field("size", Int(view.group.size))
            json.field("members", view.members)
            json.field("paid", view.paid)
            json.field("status", view.group.status.description)
            json.field("price", view.group.priceFen)
            json.field("expires_at", rfc3339(ms: view.group.expiresAtMs))
        }
        return APIResponse(status: 200, body: body)
    }

    /// `POST /v1/coupons/{batch}/claims` (empty body) → 201 with the coupon.
    /// (`user`: the token's, verified by `admitBuyerPost`.)
    func claimCoupon(_ request: APIRequest, batch: String, user: String) async -> APIResponse {
        let client = ClientAddress(request.clientIP) ?? Self.unparsablePeer
        return Self.render(await engine.claimCoupon(batch: batch, user: user, clientIP: Self.couponClient(client)))
    }

    /// What a coupon claim is counted against for `per_ip`: the client as the rate limit
    /// counts it (an IPv6 /64 is one client).
    static func couponClient(_ client: ClientAddress) -> String { client.perIPClient.description }

    /// The 201 answer to a coupon claim: the coupon.
    static func render(_ result: Result<Coupon, Rejection>) -> APIResponse {
        switch result {
        case .failure(let rejection): return APIResponse(rejection: rejection)
        case .success(let coupon):
            let body = JSONWriter.object { json in
                json.field("coupon", coupon.code.description)
                json.field("batch", coupon.batch)
                json.field("value", coupon.valueFen)
                json.field("min_spend", coupon.minSpendFen)
                json.field("expires_at", rfc3339(ms: coupon.expiresAtMs))
            }
            return APIResponse(status: 201, body: body)
        }
    }

    /// The 201 answer to an open or a join: the group, and the caller's order to pay.
    static func render(_ result: Result<GroupMembership, Rejection>) -> APIResponse {
        switch result {
        case .failure(let rejection): return APIResponse(rejection: rejection)
        case .success(let membership):
            let body = JSONWriter.object { json in
                json.field("group", membership.view.group.id.description)
                json.field("order", membership.order.id.description)
                json.field("event", membership.view.group.key.event)
                json.field("sku", membership.view.group.key.sku)
                json.field("size", Int(membership.view.group.size))
                json.field("members", membership.view.members)
                json.field("status", membership.view.group.status.description)
                json.field("amount", membership.order.amountFen)
                json.field("expires_at", rfc3339(ms: membership.view.group.expiresAtMs))
                json.field("order_expires_at", rfc3339(ms: membership.order.expiresAtMs))
            }
            return APIResponse(status: 201, body: body)
        }
    }
}
