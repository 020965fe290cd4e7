import Foundation
import Synchronization
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import InventoryActor

/// Coupons (§3.6) and their redemption in seckill orders (§3.4) through the buyer API
/// (no socket): every error code in a table, the contract's order of errors across the two
/// owners, spend / release, a restart, and 1 000 concurrent claims on one batch.
@Suite struct CouponTests {
    static let nowMs: Int64 = 1_795_000_000_000
    static let hourMs: Int64 = 3_600_000

    static func batch(_ id: String, total: Int64 = 3, value: Int64 = 500, minSpend: Int64 = 2_000, perUser: Int = 2, perIP: Int = 2, startsInMs: Int64 = -60_000, endsInMs: Int64 = hourMs, validForMs: Int64 = hourMs) -> CouponBatchConfig {
        CouponBatchConfig(
            id: id, total: total, valueFen: value, minSpendFen: minSpend, perUser: perUser, perIP: perIP,
            startsAtMs: nowMs + startsInMs, endsAtMs: nowMs + endsInMs, validForMs: validForMs)
    }

    func withEngine(coupons: [CouponBatchConfig], _ body: (TestEngine) async throws -> Void) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let items = [
            ItemConfig(sku: "P1", name: "Kettle", priceFen: 3_000, stock: 1, limitPerUser: 1, groupSize: nil, groupPriceFen: nil),
            ItemConfig(sku: "Q1", name: "Lamp", priceFen: 2_500, stock: 50, limitPerUser: 10, groupSize: nil, groupPriceFen: nil),
        ]
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, paymentWindowMs: 60_000, extraItems: items, coupons: coupons)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        try await body(world)
        await world.engine.inventory.verifyInvariants()
        await world.engine.inventory.verifyCouponInvariants()
        await world.stop()
    }

    struct Row {
        var name: String
        var user: String?
        var batch: String
        var ip: String
        var status: Int
        var error: String?
        var issued: Int64
    }

    @Test func everyClaimErrorCodeInATable() async throws {
        let coupons = [
            Self.batch("c1"), Self.batch("csoon", startsInMs: 60_000), Self.batch("cover", startsInMs: -120_000, endsInMs: -60_000),
        ]
        try await withEngine(coupons: coupons) { world in
            let rows: [Row] = [
                Row(name: "no token", user: nil, batch: "c1", ip: "10.0.0.1", status: 401, error: "unauthorized", issued: 0),
                Row(name: "unknown batch", user: "u1", batch: "nope", ip: "10.0.0.1", status: 404, error: "unknown_batch", issued: 0),
                Row(name: "not started", user: "u1", batch: "csoon", ip: "10.0.0.1", status: 425, error: "not_started", issued: 0),
                Row(name: "ended", user: "u1", batch: "cover", ip: "10.0.0.1", status: 410, error: "ended", issued: 0),
                Row(name: "first claim", user: "u1", batch: "c1", ip: "10.0.0.1", status: 201, error: nil, issued: 1),
                Row(name: "second claim, per_user 2", user: "u1", batch: "c1", ip: "10.0.0.1", status: 201, error: nil, issued: 2),
                Row(name: "third claim of u1", user: "u1", batch: "c1", ip: "10.0.0.2", status: 409, error: "limit_exceeded", issued: 2),
                Row(name: "ip1 at per_ip", user: "u2", batch: "c1", ip: "10.0.0.1", status: 409, error: "ip_limit_exceeded", issued: 2),
                Row(name: "last coupon", user: "u2", batch: "c1", ip: "10.0.0.2", status: 201, error: nil, issued: 3),
                Row(name: "exhausted before any limit", user: "u1", batch: "c1", ip: "10.0.0.1", status: 409, error: "exhausted", issued: 3),
                Row(name: "exhausted", user: "u3", batch: "c1", ip: "10.0.0.3", status: 409, error: "exhausted", issued: 3),
            ]
            for row in rows {
                let response = await world.api.respond(to: APIRequest(
                    method: "POST", path: "/v1/coupons/\(row.batch)/claims", authorization: row.user.map(world.bearer), clientIP: row.ip))
                #expect(response.status == row.status, "\(row.name): \(response.bodyText)")
                #expect(response.errorCode == row.error, "\(row.name): \(response.bodyText)")
                let issued = await world.engine.inventory.shard(forBatch: "c1").couponsIssued("c1")
                #expect(issued == row.issued, "\(row.name): issued \(String(describing: issued))")
                if row.status == 201 {
                    let json = response.json
                    #expect(json["batch"]?.stringValue == "c1" && json["value"]?.intValue == 500 && json["min_spend"]?.intValue == 2_000)
                    #expect(json["expires_at"]?.stringValue == rfc3339(ms: Self.nowMs + Self.hourMs))
                    #expect(CouponCode(json["coupon"]?.stringValue ?? "") != nil)
                }
                if row.status == 425 { #expect(response.json["starts_at"]?.stringValue == rfc3339(ms: Self.nowMs + 60_000)) }
            }
        }
    }

    struct RedeemRow {
        var name: String
        var user: String
        var sku: String
        var qty: Int = 1
        var coupon: String   // a key of the claimed coupons, or a literal code
        var status: Int
        var error: String?
        var amount: Int64? = nil
    }

    @Test func redemptionErrorsComeInContractOrder() async throws {
        let coupons = [Self.batch("c1", total: 10, perUser: 5, perIP: 10), Self.batch("cshort", validForMs: 1_000), Self.batch("cbig", value: 5_000, minSpend: 0)]
        try await withEngine(coupons: coupons) { world in
            var codes: [String: String] = [:]
            for (key, user, batch) in [("u1a", "u1", "c1"), ("u1b", "u1", "c1"), ("u2a", "u2", "c1"), ("u2b", "u2", "c1"), ("u3short", "u3", "cshort"), ("u3big", "u3", "cbig")] {
                codes[key] = await world.claim(user, batch: batch).json["coupon"]?.stringValue
            }
            let rows: [RedeemRow] = [
                RedeemRow(name: "malformed code", user: "u1", sku: "P1", coupon: "c-not-a-code", status: 409, error: "coupon_invalid"),
                RedeemRow(name: "unknown code", user: "u1", sku: "P1", coupon: "c" + String(repeating: "0", count: 35), status: 409, error: "coupon_invalid"),
                RedeemRow(name: "another user's", user: "u1", sku: "P1", coupon: "u2a", status: 409, error: "coupon_invalid"),
                RedeemRow(name: "below min_spend", user: "u1", sku: "A1", coupon: "u1a", status: 409, error: "coupon_invalid"),
                RedeemRow(name: "u1 buys P1 with u1a", user: "u1", sku: "P1", coupon: "u1a", status: 201, error: nil, amount: 2_500),
                RedeemRow(name: "held coupon is used", user: "u1", sku: "Q1", coupon: "u1a", status: 409, error: "coupon_invalid"),
                RedeemRow(name: "limit before a used coupon", user: "u1", sku: "P1", coupon: "u1a", status: 409, error: "limit_exceeded"),
                RedeemRow(name: "limit with a valid coupon", user: "u1", sku: "P1", coupon: "u1b", status: 409, error: "limit_exceeded"),
                RedeemRow(name: "coupon_invalid before sold_out", user: "u2", sku: "P1", coupon: "u1b", status: 409, error: "coupon_invalid"),
                RedeemRow(name: "sold_out with a valid coupon", user: "u2", sku: "P1", coupon: "u2a", status: 409, error: "sold_out"),
                RedeemRow(name: "the refused holds were released", user: "u2", sku: "Q1", coupon: "u2a", status: 201, error: nil, amount: 2_000),
                RedeemRow(name: "u1b still free too", user: "u1", sku: "Q1", qty: 2, coupon: "u1b", status: 201, error: nil, amount: 4_500),
                RedeemRow(name: "discount never below zero", user: "u3", sku: "Q1", coupon: "u3big", status: 201, error: nil, amount: 0),
            ]
            for row in rows {
                let response = await world.order(row.user, sku: row.sku, qty: row.qty, coupon: codes[row.coupon] ?? row.coupon)
                #expect(response.status == row.status, "\(row.name): \(response.bodyText)")
                #expect(response.errorCode == row.error, "\(row.name): \(response.bodyText)")
                if let amount = row.amount {
                    #expect(response.json["amount"]?.intValue == amount, "\(row.name): \(response.bodyText)")
                    #expect(response.json["discount"]?.intValue == (row.sku == "P1" ? 3_000 : 2_500) * Int64(row.qty) - amount, "\(row.name)")
                }
            }
            // Past its valid_for: expired.
            world.clock.advance(ms: 1_000)
            let expired = await world.order("u3", sku: "Q1", coupon: codes["u3short"]!)
            #expect(expired.errorCode == "coupon_invalid" && expired.json["message"]?.stringValue?.contains("expired") == true, "\(expired.bodyText)")
            #expect(await world.engine.inventory.counters(LedgerKey(event: "e1", sku: "Q1"))?.reserved == 4)
        }
    }

    @Test func paidOrderSpendsItsCouponCancelAndExpiryGiveItBack() async throws {
        try await withEngine(coupons: [Self.batch("c1", total: 10, perUser: 5, perIP: 10)]) { world in
            let code = await world.claim("u1").json["coupon"]!.stringValue!
            // Cancel gives it back.
            let first = await world.order("u1", sku: "Q1", coupon: code).json["order"]!.stringValue!
            #expect(await world.engine.coupon(code)?.state == .held(order: OrderID(first), token: 1))
            let canceled = await world.api.respond(to: APIRequest(method: "POST", path: "/v1/orders/\(first)/cancel", authorization: world.bearer("u1")))
            #expect(canceled.json["status"]?.stringValue == "canceled")
            #expect(await world.engine.coupon(code)?.state == .available)
            // Expiry gives it back.
            let second = await world.order("u1", sku: "Q1", coupon: code).json["order"]!.stringValue!
            world.clock.advance(ms: 60_000)
            await world.engine.expireDue()
            #expect(await world.engine.order(second)?.status == .expired)
            #expect(await world.engine.coupon(code)?.state == .available)
            // A late payment of the expired coupon order is refunded: the coupon is free again.
            let late = await world.pay(order: second, transaction: "late", amount: 2_000)
            #expect(late.json["status"]?.stringValue == "refund_pending")
            #expect(await world.engine.coupon(code)?.state == .available)
            // Payment spends it; it cannot be used again.
            let third = await world.order("u1", sku: "Q1", coupon: code).json["order"]!.stringValue!
            #expect(await world.pay(order: third, transaction: "t3", amount: 2_000).json["status"]?.stringValue == "paid")
            #expect(await world.engine.coupon(code)?.state == .spent(OrderID(third)!))
            #expect(await world.order("u1", sku: "Q1", coupon: code).errorCode == "coupon_invalid")
        }
    }

    @Test func couponsAndTheirStatesSurviveARestart() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let items = [ItemConfig(sku: "Q1", name: "Lamp", priceFen: 2_500, stock: 50, limitPerUser: 10, groupSize: nil, groupPriceFen: nil)]
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, extraItems: items, coupons: [Self.batch("c1", total: 4, perUser: 4, perIP: 4)])
        let clock = ManualClock(startMs: Self.nowMs)
        var world = try await TestEngine.start(config: config, clock: clock)
        var codes: [String] = []
        for _ in 0..<3 { codes.append(await world.claim("u1").json["coupon"]!.stringValue!) }
        let held = await world.order("u1", sku: "Q1", coupon: codes[0]).json["order"]!.stringValue!
        let spent = await world.order("u1", sku: "Q1", coupon: codes[1]).json["order"]!.stringValue!
        _ = await world.pay(order: spent, transaction: "t", amount: 2_000)
        await world.stop()

        world = try await TestEngine.start(config: config, clock: clock)
        #expect(await world.engine.coupon(codes[0])?.state == .held(order: OrderID(held), token: 0))
        #expect(await world.engine.coupon(codes[1])?.state == .spent(OrderID(spent)!))
        #expect(await world.engine.coupon(codes[2])?.state == .available)
        #expect(await world.order("u1", sku: "Q1", coupon: codes[1]).errorCode == "coupon_invalid")
        // The held coupon goes back when its recovered order is canceled.
        _ = await world.api.respond(to: APIRequest(method: "POST", path: "/v1/orders/\(held)/cancel", authorization: world.bearer("u1")))
        #expect(await world.engine.coupon(codes[0])?.state == .available)
        // The batch's count survived: one more claim, then exhausted.
        #expect(await world.claim("u1").status == 201)
        #expect(await world.claim("u2").errorCode == "exhausted")
        await world.engine.inventory.verifyCouponInvariants()
        await world.stop()
    }

    @Test func thousandConcurrentClaimsFromFiftyIPsIssueExactlyTheTotal() async throws {
        let batch = Self.batch("c1", total: 100, perUser: 2, perIP: 3)
        try await withEngine(coupons: [batch]) { world in
            let claims = (0..<1_000).map { n in (user: "u\(n % 400)", ip: "10.0.\(n % 50).1", token: world.bearer("u\(n % 400)")) }
            let api = world.api
            let answers = await withTaskGroup(of: (String, String, Int, String?).self) { tasks in
                for claim in claims {
                    tasks.addTask {
                        let response = await api.respond(to: APIRequest(method: "POST", path: "/v1/coupons/c1/claims", authorization: claim.token, clientIP: claim.ip))
                        return (claim.user, claim.ip, response.status, response.json["coupon"]?.stringValue)
                    }
                }
                var answers: [(String, String, Int, String?)] = []
                for await answer in tasks { answers.append(answer) }
                return answers
            }
            let issued = answers.filter { $0.2 == 201 }
            #expect(issued.count == 100)
            #expect(Set(issued.compactMap(\.3)).count == 100, "codes are distinct")
            #expect(Dictionary(grouping: issued, by: \.1).values.allSatisfy { $0.count <= batch.perIP })
            #expect(Dictionary(grouping: issued, by: \.0).values.allSatisfy { $0.count <= batch.perUser })
            #expect(answers.allSatisfy { $0.2 == 201 || $0.2 == 409 })
            #expect(await world.engine.inventory.shard(forBatch: "c1").couponsIssued("c1") == 100)
        }
    }

    @Test func couponCodesRoundTripAndRejectOtherForms() {
        var generator = SystemRandomNumberGenerator()
        let code = CouponCode(slot: 1_023, high: generator.next(), low: 0)
        #expect(code.description.count == 36 && CouponCode(code.description) == code)
        #expect(CouponCode("c" + String(repeating: "f", count: 35)) == nil, "slot out of range")
        #expect(CouponCode(code.description.uppercased()) == nil && CouponCode(String(code.description.dropLast())) == nil)
    }
}
