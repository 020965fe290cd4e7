import Foundation
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import InventoryActor

/// Payment notifications (§3.7) through the buyer API: every check, in order.
@Suite struct PaymentTests {
    static let nowMs: Int64 = 1_795_000_000_000
    static let key = LedgerKey(event: "e1", sku: "A1")

    func withEngine(stock: Int64 = 1, _ body: (TestEngine) async throws -> Void) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: stock, limitPerUser: 1)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        try await body(world)
        await world.stop()
    }

    func counters(_ world: TestEngine) async -> StockCounters {
        await world.engine.inventory.counters(Self.key)!
    }

    @Test func validPaymentMakesOrderPaidAndSold() async throws {
        try await withEngine { world in
            let id = await world.order("u1").json["order"]!.stringValue!
            let paid = await world.pay(order: id, transaction: "tx1", amount: 990)
            #expect(paid.status == 200 && paid.json["status"]?.stringValue == "paid" && paid.json["duplicate"] == nil)
            #expect(await counters(world) == StockCounters(total: 1, available: 0, reserved: 0, sold: 1))
            #expect(await world.engine.order(id)?.transaction == "tx1")
        }
    }

    @Test func forgedStaleReplayedUnknownAndMismatchedChangeNothing() async throws {
        try await withEngine { world in
            let id = await world.order("u1").json["order"]!.stringValue!
            let forged = await world.pay(order: id, transaction: "tx1", amount: 990, secret: "not-the-secret")
            #expect(forged.status == 401 && forged.errorCode == "bad_signature")
            let unsigned = await world.api.respond(to: APIRequest(method: "POST", path: "/v1/payments/notify", body: Array(#"{"order":"\#(id)","transaction":"t","amount":990}"#.utf8)))
            #expect(unsigned.status == 401 && unsigned.errorCode == "bad_signature")
            let stale = await world.pay(order: id, transaction: "tx1", amount: 990, timestamp: Self.nowMs / 1000 - 301)
            #expect(stale.status == 401 && stale.errorCode == "stale")
            let future = await world.pay(order: id, transaction: "tx1", amount: 990, timestamp: Self.nowMs / 1000 + 301)
            #expect(future.errorCode == "stale")
            let unknown = await world.pay(order: "o999999", transaction: "tx1", amount: 990, nonce: "n-unknown")
            #expect(unknown.status == 404 && unknown.errorCode == "unknown_order")
            let garbageID = await world.pay(order: "../etc", transaction: "tx1", amount: 990)
            #expect(garbageID.status == 404)
            let mismatch = await world.pay(order: id, transaction: "tx1", amount: 1, nonce: "n-mismatch")
            #expect(mismatch.status == 422 && mismatch.errorCode == "amount_mismatch")
            // A refused notification has not used its nonce: only an accepted one does.
            let again = await world.pay(order: id, transaction: "tx1", amount: 1, nonce: "n-mismatch")
            #expect(again.status == 422 && again.errorCode == "amount_mismatch")
            #expect(await counters(world) == StockCounters(total: 1, available: 0, reserved: 1, sold: 0))
            #expect(await world.engine.order(id)?.status == .pending)
            let accepted = await world.pay(order: "o999999", transaction: "tx0", amount: 990, nonce: "n-used")
            #expect(accepted.status == 404)
            let paidElsewhere = await world.pay(order: id, transaction: "tx1", amount: 990, nonce: "n-used")
            #expect(paidElsewhere.status == 200, "the 404 did not use the nonce")
            let replay = await world.pay(order: id, transaction: "tx1", amount: 990, nonce: "n-used")
            #expect(replay.status == 409 && replay.errorCode == "replay", "a nonce accepted within the window is a replay, whatever the body")
            let wrongAmountReplay = await world.pay(order: id, transaction: "tx2", amount: 1, nonce: "n-used")
            #expect(wrongAmountReplay.status == 409)
            #expect(await counters(world) == StockCounters(total: 1, available: 0, reserved: 0, sold: 1))
        }
    }

    @Test func duplicateAndDoublePayment() async throws {
        try await withEngine { world in
            let id = await world.order("u1").json["order"]!.stringValue!
            _ = await world.pay(order: id, transaction: "tx1", amount: 990)
            let duplicate = await world.pay(order: id, transaction: "tx1", amount: 990)
            #expect(duplicate.status == 200 && duplicate.json["duplicate"]?.boolValue == true && duplicate.json["status"]?.stringValue == "paid")
            let double = await world.pay(order: id, transaction: "tx2", amount: 990)
            #expect(double.status == 200 && double.json["refund"]?.stringValue == "tx2" && double.json["status"]?.stringValue == "paid")
            #expect(world.engine.stats.doublePayments.load(ordering: .relaxed) == 1)
            #expect(await counters(world).sold == 1, "a double payment sells nothing more")
        }
    }

    @Test func latePaymentRetakesStockWhenLeft() async throws {
        try await withEngine { world in
            let id = await world.order("u1").json["order"]!.stringValue!
            world.clock.advance(ms: 60_000)
            #expect(await world.engine.expireDue() == 1)
            let late = await world.pay(order: id, transaction: "tx1", amount: 990)
            #expect(late.status == 200 && late.json["status"]?.stringValue == "paid" && late.json["late"]?.boolValue == true)
            #expect(await counters(world) == StockCounters(total: 1, available: 0, reserved: 0, sold: 1))
            #expect(world.engine.stats.latePayments.load(ordering: .relaxed) == 1)
        }
    }

    @Test func latePaymentWithoutStockIsRefundPending() async throws {
        try await withEngine { world in
            let id = await world.order("u1").json["order"]!.stringValue!
            let cancel = await world.api.respond(to: APIRequest(method: "POST", path: "/v1/orders/\(id)/cancel", authorization: world.bearer("u1")))
            #expect(cancel.status == 200)
            #expect(await world.order("u2").status == 201, "the freed unit went to someone else")
            let late = await world.pay(order: id, transaction: "tx1", amount: 990)
            #expect(late.status == 200 && late.json["status"]?.stringValue == "refund_pending")
            #expect(await counters(world) == StockCounters(total: 1, available: 0, reserved: 1, sold: 0), "nothing oversold")
            #expect(await world.engine.order(id)?.status == .refundPending)
        }
    }

    @Test func malformedNotificationBodyIsBadRequestAfterSignature() async throws {
        try await withEngine { world in
            let body = Array(#"{"order":1,"transaction":"t","amount":990}"#.utf8)
            let ts = String(Self.nowMs / 1000)
            let signature = PaymentSignature(secret: TestSecrets.payment).sign(timestamp: ts, nonce: "n1", body: body)
            let response = await world.api.respond(to: APIRequest(method: "POST", path: "/v1/payments/notify", payTimestamp: ts, payNonce: "n1", paySignature: signature, body: body))
            #expect(response.status == 400 && response.errorCode == "bad_request")
        }
    }
}
