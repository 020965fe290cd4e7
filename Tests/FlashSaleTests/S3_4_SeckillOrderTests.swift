import Foundation
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import InventoryActor

/// The seckill order rules of §3.4 through the buyer API (no socket): each error in
/// the contract's order, and the counters after each row.
@Suite struct OrderRulesTests {
    static let nowMs: Int64 = 1_795_000_000_000

    func withEngine(stock: Int64 = 2, _ body: (TestEngine) async throws -> Void) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let item = ItemConfig(sku: "A1", name: "x", priceFen: 990, stock: 5, limitPerUser: 1, groupSize: nil, groupPriceFen: nil)
        let events = [
            EventConfig(id: "soon", kind: .seckill, startsAtMs: Self.nowMs + 60_000, endsAtMs: Self.nowMs + 120_000, items: [item]),
            EventConfig(id: "over", kind: .seckill, startsAtMs: Self.nowMs - 120_000, endsAtMs: Self.nowMs - 60_000, items: [item]),
            EventConfig(id: "held", kind: .seckill, startsAtMs: Self.nowMs - 60_000, endsAtMs: Self.nowMs + 60_000, items: [item]),
        ]
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: stock, limitPerUser: 2, events: events)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        defer { Task { await world.stop() } }
        try await body(world)
        await world.stop()
    }

    struct Row: Sendable {
        var name: String
        var authorization: String?   // "u:<user>" mints a token; anything else is sent as is
        var path: String
        var body: String
        var status: Int
        var error: String?
        var counters: (available: Int64, reserved: Int64, sold: Int64)
    }

    @Test func orderErrorsComeInContractOrder() async throws {
        try await withEngine(stock: 2) { world in
            _ = await world.engine.setPaused("held", true)
            let rows: [Row] = [
                Row(name: "no token", authorization: nil, path: "/v1/events/nope/orders", body: "garbage", status: 401, error: "unauthorized", counters: (2, 0, 0)),
                Row(name: "forged token", authorization: "Bearer a.b.c", path: "/v1/events/e1/orders", body: #"{"sku":"A1","qty":1}"#, status: 401, error: "unauthorized", counters: (2, 0, 0)),
                Row(name: "unreadable body before unknown event", authorization: "u:u1", path: "/v1/events/nope/orders", body: "{", status: 400, error: "bad_request", counters: (2, 0, 0)),
                Row(name: "qty of wrong type", authorization: "u:u1", path: "/v1/events/e1/orders", body: #"{"sku":"A1","qty":"1"}"#, status: 400, error: "bad_request", counters: (2, 0, 0)),
                Row(name: "unknown event", authorization: "u:u1", path: "/v1/events/nope/orders", body: #"{"sku":"A1","qty":9}"#, status: 404, error: "unknown_event", counters: (2, 0, 0)),
                Row(name: "unknown sku before qty", authorization: "u:u1", path: "/v1/events/e1/orders", body: #"{"sku":"ZZ","qty":9}"#, status: 404, error: "unknown_sku", counters: (2, 0, 0)),
                Row(name: "qty 0", authorization: "u:u1", path: "/v1/events/e1/orders", body: #"{"sku":"A1","qty":0}"#, status: 400, error: "bad_request", counters: (2, 0, 0)),
                Row(name: "qty over limit", authorization: "u:u1", path: "/v1/events/e1/orders", body: #"{"sku":"A1","qty":3}"#, status: 400, error: "bad_request", counters: (2, 0, 0)),
                Row(name: "not started", authorization: "u:u1", path: "/v1/events/soon/orders", body: #"{"sku":"A1","qty":1}"#, status: 425, error: "not_started", counters: (2, 0, 0)),
                Row(name: "ended", authorization: "u:u1", path: "/v1/events/over/orders", body: #"{"sku":"A1","qty":1}"#, status: 410, error: "ended", counters: (2, 0, 0)),
                Row(name: "paused", authorization: "u:u1", path: "/v1/events/held/orders", body: #"{"sku":"A1","qty":1}"#, status: 503, error: "paused", counters: (2, 0, 0)),
                Row(name: "first order", authorization: "u:u1", path: "/v1/events/e1/orders", body: #"{"sku":"A1","qty":1,"extra":[1,2]}"#, status: 201, error: nil, counters: (1, 1, 0)),
                Row(name: "limit exceeded", authorization: "u:u1", path: "/v1/events/e1/orders", body: #"{"sku":"A1","qty":2}"#, status: 409, error: "limit_exceeded", counters: (1, 1, 0)),
                Row(name: "second buyer", authorization: "u:u2", path: "/v1/events/e1/orders", body: #"{"sku":"A1","qty":1}"#, status: 201, error: nil, counters: (0, 2, 0)),
                Row(name: "sold out", authorization: "u:u3", path: "/v1/events/e1/orders", body: #"{"sku":"A1","qty":1}"#, status: 409, error: "sold_out", counters: (0, 2, 0)),
            ]
            for row in rows {
                var authorization = row.authorization
                if let value = authorization, value.hasPrefix("u:") { authorization = world.bearer(String(value.dropFirst(2))) }
                let response = await world.api.respond(to: APIRequest(method: "POST", path: row.path, authorization: authorization, body: Array(row.body.utf8)))
                #expect(response.status == row.status, "\(row.name): \(response.bodyText)")
                #expect(response.errorCode == row.error, "\(row.name): \(response.bodyText)")
                if row.error != nil { #expect(response.json["message"]?.stringValue?.isEmpty == false, "\(row.name) has a message") }
                let counters = await world.engine.inventory.counters(LedgerKey(event: "e1", sku: "A1"))!
                #expect((counters.available, counters.reserved, counters.sold) == row.counters, "\(row.name): \(counters)")
                if row.name == "not started" { #expect(response.json["starts_at"]?.stringValue == rfc3339(ms: Self.nowMs + 60_000)) }
                if row.name == "paused" { #expect(response.retryAfterSeconds != nil) }
            }
        }
    }

    @Test func createdOrderHasTheContractShape() async throws {
        try await withEngine { world in
            let response = await world.order("u1", qty: 2)
            #expect(response.status == 201)
            let json = response.json
            #expect(json["status"]?.stringValue == "pending")
            #expect(json["event"]?.stringValue == "e1" && json["sku"]?.stringValue == "A1")
            #expect(json["qty"]?.intValue == 2 && json["amount"]?.intValue == 1980 && json["discount"]?.intValue == 0)
            #expect(json["expires_at"]?.stringValue == rfc3339(ms: Self.nowMs + 60_000))
            let id = json["order"]!.stringValue!
            let mine = await world.api.respond(to: APIRequest(method: "GET", path: "/v1/orders/\(id)", authorization: world.bearer("u1")))
            #expect(mine.status == 200 && mine.json["order"]?.stringValue == id)
            let theirs = await world.api.respond(to: APIRequest(method: "GET", path: "/v1/orders/\(id)", authorization: world.bearer("u2")))
            #expect(theirs.status == 404 && theirs.errorCode == "unknown_order", "another user's order is unknown")
        }
    }

    @Test func cancelGivesStockBackOnlyOnce() async throws {
        try await withEngine(stock: 1) { world in
            let id = await world.order("u1").json["order"]!.stringValue!
            let cancel = APIRequest(method: "POST", path: "/v1/orders/\(id)/cancel", authorization: world.bearer("u1"))
            let first = await world.api.respond(to: cancel)
            #expect(first.status == 200 && first.json["status"]?.stringValue == "canceled")
            let again = await world.api.respond(to: cancel)
            #expect(again.status == 409 && again.errorCode == "order_closed")
            let counters = await world.engine.inventory.counters(LedgerKey(event: "e1", sku: "A1"))!
            #expect(counters == StockCounters(total: 1, available: 1, reserved: 0, sold: 0))
            let other = await world.api.respond(to: APIRequest(method: "POST", path: "/v1/orders/\(id)/cancel", authorization: world.bearer("u2")))
            #expect(other.status == 404)
        }
    }

    @Test func unpaidOrderExpiresWithinASweepOfItsDeadline() async throws {
        try await withEngine(stock: 1) { world in
            let id = await world.order("u1").json["order"]!.stringValue!
            world.clock.advance(ms: 59_999)
            #expect(await world.engine.expireDue() == 0, "not before its deadline")
            world.clock.advance(ms: 1)
            #expect(await world.engine.expireDue() == 1)
            let order = await world.engine.order(id)!
            #expect(order.status == .expired)
            #expect(await world.order("u2").status == 201, "its stock is back on sale")
        }
    }

    @Test func eventViewShowsLiveCounters() async throws {
        try await withEngine(stock: 2) { world in
            _ = await world.order("u1")
            let view = await world.api.respond(to: APIRequest(method: "GET", path: "/v1/events/e1"))
            #expect(view.status == 200)
            #expect(view.json["state"]?.stringValue == "live" && view.json["kind"]?.stringValue == "seckill")
            let item = view.json["items"]?[0]
            #expect(item?["available"]?.intValue == 1 && item?["reserved"]?.intValue == 1 && item?["sold"]?.intValue == 0 && item?["total"]?.intValue == 2)
            let list = await world.api.respond(to: APIRequest(method: "GET", path: "/v1/events"))
            let ids = list.json["events"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            #expect(ids.contains("e1") && ids.contains("over") && ids.contains("soon"))
            #expect(await world.api.respond(to: APIRequest(method: "GET", path: "/v1/events/nope")).errorCode == "unknown_event")
        }
    }
}
