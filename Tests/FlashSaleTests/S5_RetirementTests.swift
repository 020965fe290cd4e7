import FlashSaleTestKit
import Foundation
import Synchronization
import Testing

@testable import FlashSale
@testable import FlashSaleJournal
@testable import FlashSaleHTTP
@testable import InventoryActor

/// Running for months (§5): an event ended longer than `memory.retention` ago leaves memory;
/// its orders, groups and counters stay in storage and are still answered from there.
@Suite struct RetirementTests {
    static let dayMs: Int64 = 86_400_000

    // MARK: The book

    @Test func theBookRetiresAnEventOnlyOnceNothingOfItCanMoveAndKeepsItsIdsTaken() {
        var book = OrderBook()
        let old = LedgerKey(event: "old", sku: "S"), live = LedgerKey(event: "live", sku: "S")
        book.addLedger(old, total: 10_000, limitPerUser: 1)
        book.addLedger(live, total: 10, limitPerUser: 1)
        var ids: [OrderID] = []
        // More than a chunk, so whole chunks are freed.
        for index in 0..<(OrderTable.chunkOrders + 100) {
            guard case .reserved(let order) = book.reserve(ReserveRequest(
                key: old, user: "u\(index)", qty: 1, amountFen: 100, discountFen: 0, nowMs: 0, expiresAtMs: 1_000, coupon: index == 0 ? "c1" : nil))
            else { Issue.record("not reserved"); return }
            ids.append(order.id)
        }
        guard case .reserved(let kept) = book.reserve(ReserveRequest(
            key: live, user: "k", qty: 1, amountFen: 100, discountFen: 0, nowMs: 0, expiresAtMs: .max))
        else { Issue.record("not reserved"); return }
        _ = book.pay(ids[0], transaction: "t0", amountFen: 100, nowMs: 10)
        _ = book.pay(ids[1], transaction: "t1", amountFen: 100, nowMs: 10)

        // A pending order of it: refused, nothing taken.
        #expect(book.retire(event: "old") == .failure(.pendingOrder(ids[2])))
        #expect(book.orderCount == ids.count + 1)

        #expect(book.expireDue(nowMs: 1_000).count == ids.count - 2)
        guard case .success(let part) = book.retire(event: "old") else { Issue.record("not retired"); return }
        #expect(part.orders == ids.count)
        #expect(part.counters[old] == StockCounters(total: 10_000, available: 9_998, reserved: 0, sold: 2))
        #expect(part.spentCoupons == [SpentCoupon(code: "c1", order: ids[0])])
        #expect(book.orderCount == 1)
        #expect(book.order(ids[0]) == nil && book.wasRetired(ids[0]) && book.wasRetired(ids.last!))
        #expect(book.pay(ids[1], transaction: "t9", amountFen: 100, nowMs: 20) == .retired)
        #expect(book.cancel(ids[1], user: "u1", nowMs: 20) == .retired)
        #expect(book.order(kept.id) == kept && !book.wasRetired(kept.id))
        // An id never given out is unknown, not retired.
        let unknown = OrderID(sequence: UInt64(ids.count + 50), slot: old.slot)
        #expect(!book.wasRetired(unknown) && book.pay(unknown, transaction: "t", amountFen: 100, nowMs: 20) == .unknownOrder)
        #expect(book.counters(old) == nil)
        book.verifyInvariants()

        // A book rebuilt with the floors (a restart) never gives those ids out again.
        var rebuilt = OrderBook()
        rebuilt.raiseFloors(part.floors)
        rebuilt.addLedger(old, total: 1, limitPerUser: 1)
        #expect(rebuilt.wasRetired(ids[0]))
        guard case .reserved(let next) = rebuilt.reserve(ReserveRequest(
            key: old, user: "n", qty: 1, amountFen: 100, discountFen: 0, nowMs: 0, expiresAtMs: 1_000))
        else { Issue.record("not reserved"); return }
        #expect(next.id.sequence == ids.last!.sequence + 1)
        #expect(rebuilt.order(next.id) == next)
        rebuilt.verifyInvariants()
    }

    @Test func aRetiredBatchGivesItsTableMemoryBack() {
        var book = CouponBook()
        for batch in ["big", "small"] {
            book.addBatch(CouponBatchRules(
                id: batch, total: 10_000, valueFen: 100, minSpendFen: 0, perUser: 1, perIP: 10_000,
                startsAtMs: 0, endsAtMs: 1_000, validForMs: 1_000))
        }
        for index in 0..<5_000 {
            _ = book.claim(batch: "big", user: "u\(index)", clientIP: "ip", code: CouponCode(slot: 0, high: UInt64(index), low: 1), nowMs: 0)
        }
        let kept = CouponCode(slot: 0, high: 0, low: 2)
        _ = book.claim(batch: "small", user: "k", clientIP: "ip", code: kept, nowMs: 0)
        #expect(book.couponCapacity >= 5_001)
        #expect(book.retire(batch: "big") == 5_000)
        // A dictionary keeps its peak capacity unless rebuilt: each week's batch would leave
        // its whole table behind, on whichever shard it landed.
        #expect(book.couponCapacity < 100)
        #expect(book.coupon(kept)?.owner == "k")
        book.verifyInvariants()
    }

    @Test func theExpiryHeapGivesABurstsMemoryBackOnceDrained() {
        var queue = ExpiryQueue<Int>()
        for index in 0..<20_000 { queue.push(deadlineMs: Int64(index % 977), id: index) }
        #expect(queue.capacity >= 20_000)
        var popped: [Int64] = []
        while let id = queue.popDue(nowMs: .max) { popped.append(Int64(id % 977)) }
        #expect(popped.count == 20_000 && popped == popped.sorted())
        #expect(queue.capacity <= 2 * ExpiryQueue<Int>.keptCapacity)
    }

    @Test func retiredPaymentsTakeTurnsOneAtATime() async {
        final class Probe: Sendable {
            let state = Mutex((active: 0, most: 0, ran: 0))
        }
        let turns = TurnTaking(), probe = Probe()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<500 {
                group.addTask {
                    await turns.run {
                        probe.state.withLock { $0.active += 1; $0.most = max($0.most, $0.active) }
                        await Task.yield()
                        probe.state.withLock { $0.active -= 1; $0.ran += 1 }
                    }
                }
            }
        }
        let seen = probe.state.withLock { $0 }
        #expect(seen.ran == 500)
        #expect(seen.most == 1, "two turns ran at once")
    }

    // MARK: The engine, with the journal

    /// When every engine test starts.
    static let startMs: Int64 = 1_800_000_000_000

    /// A seckill `id` of A1 (990 fen, stock 10, limit 2).
    static func phoneCases(_ id: String, startsAtMs: Int64, endsAtMs: Int64) -> EventConfig {
        EventConfig(
            id: id, kind: .seckill, startsAtMs: startsAtMs, endsAtMs: endsAtMs,
            items: [ItemConfig(sku: "A1", name: "Phone case", priceFen: 990, stock: 10, limitPerUser: 2, groupSize: nil, groupPriceFen: nil)])
    }

    /// A config with a live event `e1` (A1: 990 fen, stock 10, limit 2), a coupon batch `c1`
    /// valid for 60 days, and retention `retentionMs`.
    static func config(_ directory: TemporaryDirectory, nowMs: Int64, retentionMs: Int64 = 7 * dayMs) -> SaleConfig {
        let batch = CouponBatchConfig(
            id: "c1", total: 100, valueFen: 100, minSpendFen: 0, perUser: 5, perIP: 100,
            startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 60 * dayMs, validForMs: 60 * dayMs)
        let later = phoneCases("later", startsAtMs: nowMs + 20 * dayMs, endsAtMs: nowMs + 21 * dayMs)
        var config = makeTestConfig(dataDirectory: directory.path, nowMs: nowMs, events: [later], coupons: [batch])
        config.memoryRetentionMs = retentionMs
        return config
    }

    @Test func anEndedEventLeavesMemoryAfterTheRetentionAndIsStillAnsweredFromStorage() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let startMs = Self.startMs, clock = ManualClock(startMs: Self.startMs)
        var world = try await TestEngine.start(config: Self.config(directory, nowMs: startMs), clock: clock)

        let coupon = try #require(await world.claim("buyer").json["coupon"]?.stringValue)
        let paid = try #require(await world.order("buyer", coupon: coupon).json["order"]?.stringValue)
        let expired = try #require(await world.order("other").json["order"]?.stringValue)
        let doubled = try #require(await world.order("third").json["order"]?.stringValue)
        #expect(await world.pay(order: paid, transaction: "t-paid", amount: 890).status == 200)
        #expect(await world.pay(order: doubled, transaction: "t-doubled", amount: 990).status == 200)

        // The sale ends (an hour on); a week is not yet over: still in memory.
        clock.advance(ms: 3_600_000 + 6 * Self.dayMs)
        await world.engine.expireDue()
        #expect(await world.engine.retireEnded().isEmpty)
        clock.advance(ms: Self.dayMs)
        #expect(await world.engine.retireEnded() == ["e1"])
        #expect(await world.engine.retireEnded().isEmpty)
        #expect(await world.engine.inventory.lookup(try #require(OrderID(paid))) == .retired)
        var held = 0
        for shard in world.engine.inventory.shards { held += await shard.orderCount() }
        #expect(held == 0)

        // Every read still answers, from storage.
        func checkReads(_ world: TestEngine, expiredNow: OrderStatus) async {
            let shown = await world.api.respond(to: APIRequest(method: "GET", path: "/v1/orders/\(paid)", authorization: world.bearer("buyer")))
            #expect(shown.status == 200 && shown.json["status"]?.stringValue == "paid" && shown.json["discount"]?.intValue == 100)
            let hidden = await world.api.respond(to: APIRequest(method: "GET", path: "/v1/orders/\(paid)", authorization: world.bearer("other")))
            #expect(hidden.status == 404)
            let event = await world.api.respond(to: APIRequest(method: "GET", path: "/v1/events/e1", authorization: world.bearer("x")))
            #expect(event.status == 200 && event.json["state"]?.stringValue == "ended")
            let item = event.json["items"]?[0]
            #expect(item?["sold"]?.intValue == 2 && item?["available"]?.intValue == 8 && item?["reserved"]?.intValue == 0)
            #expect(await world.engine.order(expired)?.status == expiredNow)
        }
        await checkReads(world, expiredNow: .expired)

        // Payments of retired orders, decided against storage: the same transaction is a
        // duplicate; another one a double charge; a late one a refund (the sale is closed).
        let again = await world.pay(order: paid, transaction: "t-paid", amount: 890)
        #expect(again.status == 200 && again.json["duplicate"]?.boolValue == true)
        let double = await world.pay(order: doubled, transaction: "t-second", amount: 990)
        #expect(double.status == 200 && double.json["refund"]?.stringValue == "t-second")
        let late = await world.pay(order: expired, transaction: "t-late", amount: 990)
        #expect(late.status == 200 && late.json["status"]?.stringValue == "refund_pending")
        #expect(await world.pay(order: expired, transaction: "t-late", amount: 991).status == 422)
        #expect(await world.engine.order(expired)?.status == .refundPending)
        let cancel = await world.respond(to: APIRequest(method: "POST", path: "/v1/orders/\(doubled)/cancel", authorization: world.bearer("third")))
        #expect(cancel.status == 409 && cancel.errorCode == "order_closed")
        // A retired event cannot change.
        if case .failure(let refusal) = await world.engine.restock(event: "e1", sku: "A1", delta: 5) {
            #expect(refusal.status == 409)
        } else {
            Issue.record("a retired event was restocked")
        }
        #expect(world.engine.checkEventEdit(id: "e1", json: Array(#"{"ends_at":"2030-01-01T00:00:00Z"}"#.utf8)).isFailure)

        // A restart loads nothing of it, and answers the same.
        await world.stop()
        let state = try Journal.recover(directory: directory.path)
        #expect(state.orders.isEmpty && state.retiredEvents.map(\.event) == ["e1"])
        world = try await TestEngine.start(config: Self.config(directory, nowMs: startMs), clock: clock)
        await checkReads(world, expiredNow: .refundPending)
        #expect(await world.engine.inventory.lookup(try #require(OrderID(paid))) == .retired)
        // The coupon the retired order spent stays spent.
        clock.advance(ms: 13 * Self.dayMs)
        let reuse = await world.order("buyer", event: "later", coupon: coupon)
        #expect(reuse.status == 409 && reuse.errorCode == "coupon_invalid")
        #expect(await world.order("buyer", event: "later").status == 201)
        // The change feed kept every change, the retired payments' too.
        let types = (try await world.engine.changes(after: 0, limit: 100).get()).map(\.type)
        #expect(types.contains("payment.refund") && types.contains("order.refund_pending"))

        // Storage that cannot answer is `unavailable`, never "no such order": a damaged row.
        try Self.damage(directory, "UPDATE orders SET status = 99 WHERE id = \(Int64(bitPattern: try #require(OrderID(expired)).rawValue))")
        let unreadable = await world.api.respond(to: APIRequest(method: "GET", path: "/v1/orders/\(expired)", authorization: world.bearer("other")))
        #expect(unreadable.status == 503 && unreadable.errorCode == "unavailable")
        let cancelUnreadable = await world.respond(to: APIRequest(method: "POST", path: "/v1/orders/\(expired)/cancel", authorization: world.bearer("other")))
        #expect(cancelUnreadable.status == 503)
        #expect(await world.pay(order: expired, transaction: "t-unread", amount: 990).status == 503)
        #expect(await world.engine.findOrder(expired).isFailure)
        await world.stop()
    }

    /// Runs `sql` on the test's database through a connection of its own (a row damaged behind
    /// the daemon's back).
    static func damage(_ directory: TemporaryDirectory, _ sql: String) throws {
        let database = try SQLiteDatabase(path: Journal.databasePath(directory.path), flags: [.readWrite, .noMutex])
        try database.setBusyTimeout(milliseconds: 5_000)
        try database.exec(sql)
    }

    /// A config with `e1` and a group-buy `g1` (G1: groups of 2) ending in an hour, a coupon
    /// batch `c2` closing with them whose coupons are valid a day, a long batch `c1`, and an
    /// event `next` starting after the retention.
    static func groupAndCouponConfig(_ directory: TemporaryDirectory, nowMs: Int64) -> SaleConfig {
        let short = CouponBatchConfig(
            id: "c2", total: 100, valueFen: 100, minSpendFen: 0, perUser: 1, perIP: 100,
            startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 3_600_000, validForMs: dayMs)
        let long = CouponBatchConfig(
            id: "c1", total: 100, valueFen: 100, minSpendFen: 0, perUser: 5, perIP: 100,
            startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 60 * dayMs, validForMs: 60 * dayMs)
        let group = ItemConfig(sku: "G1", name: "Tea set", priceFen: 8800, stock: 10, limitPerUser: 1, groupSize: 2, groupPriceFen: 5900)
        let events = [
            EventConfig(id: "g1", kind: .groupbuy, startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 3_600_000, items: [group]),
            phoneCases("next", startsAtMs: nowMs + 8 * dayMs, endsAtMs: nowMs + 9 * dayMs),
        ]
        var config = makeTestConfig(dataDirectory: directory.path, nowMs: nowMs, events: events, coupons: [short, long])
        config.memoryRetentionMs = 7 * dayMs
        return config
    }

    @Test func groupsAndSpentCouponBatchesLeaveMemoryAndStayAnswered() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let startMs = Self.startMs, clock = ManualClock(startMs: Self.startMs)
        var world = try await TestEngine.start(config: Self.groupAndCouponConfig(directory, nowMs: startMs), clock: clock)

        // A formed group (both members paid) and one that never fills.
        let opened = await world.openGroup("a")
        let formed = try #require(opened.json["group"]?.stringValue)
        let joined = await world.join("b", group: formed)
        for (order, amount) in [(opened.json["order"]?.stringValue, 5900), (joined.json["order"]?.stringValue, 5900)] {
            #expect(await world.pay(order: try #require(order), transaction: "t-\(order!)", amount: Int64(amount)).status == 200)
        }
        let lonely = try #require(await world.openGroup("c").json["group"]?.stringValue)
        #expect(await world.showGroup(formed).json["status"]?.stringValue == "formed")
        // A coupon of c2 spent by a paid order, one left unused, one of the long batch.
        let spent = try #require(await world.claim("buyer", batch: "c2").json["coupon"]?.stringValue)
        let unused = try #require(await world.claim("idle", batch: "c2").json["coupon"]?.stringValue)
        let kept = try #require(await world.claim("idle", batch: "c1").json["coupon"]?.stringValue)
        let paid = try #require(await world.order("buyer", coupon: spent).json["order"]?.stringValue)
        #expect(await world.pay(order: paid, transaction: "t-paid", amount: 890).status == 200)

        // Everything ended an hour on; c2's coupons expired a day after; a week later all go
        // but c1, whose coupons are still good.
        clock.advance(ms: 3_600_000)
        await world.engine.expireDue()
        clock.advance(ms: Self.dayMs + 7 * Self.dayMs)
        #expect(Set(await world.engine.retireEnded()) == ["e1", "g1", "c2"])
        #expect(await world.engine.retireEnded().isEmpty)
        // c2's coupons left memory; c1's stayed.
        for (code, inMemory) in [(spent, false), (unused, false), (kept, true)] {
            let parsed = try #require(CouponCode(code))
            #expect((await world.engine.inventory.shard(for: parsed).coupon(parsed) != nil) == inMemory)
        }

        /// `keptStatus`: what an order redeeming c1's coupon gets (201, then 409: held by that order).
        func checkReads(_ world: TestEngine, keptStatus: Int) async throws {
            let shown = await world.showGroup(formed)
            #expect(shown.status == 200 && shown.json["status"]?.stringValue == "formed" && shown.json["members"]?.intValue == 2)
            #expect(await world.showGroup(lonely).json["status"]?.stringValue == "failed")
            let join = await world.join("d", group: lonely)
            #expect(join.status == 409 && join.errorCode == "group_closed")
            let event = await world.api.respond(to: APIRequest(method: "GET", path: "/v1/events/g1", authorization: world.bearer("x")))
            #expect(event.status == 200 && event.json["groups_formed"]?.intValue == 1)
            #expect(event.json["items"]?[0]?["sold"]?.intValue == 2)
            // c2 claims nothing more; its coupons are spent or expired, never spendable again.
            #expect(await world.claim("late", batch: "c2").status == 410)
            for code in [spent, unused] {
                let reuse = await world.order("idle", event: "next", coupon: code)
                #expect(reuse.status == 409 && reuse.errorCode == "coupon_invalid")
            }
            #expect(await world.order("idle", event: "next", coupon: kept).status == keptStatus)
        }
        try await checkReads(world, keptStatus: 201)

        // A restart loads none of c2's coupons and answers the same.
        await world.stop()
        let state = try Journal.recover(directory: directory.path)
        #expect(state.retiredBatches.map(\.batch) == ["c2"] && state.coupons.map(\.batch) == ["c1"])
        #expect(state.groups.isEmpty)
        // The coupon e1's order spent is forgotten with its batch: nothing can redeem it now.
        #expect(state.spentCoupons.isEmpty)
        world = try await TestEngine.start(config: Self.groupAndCouponConfig(directory, nowMs: startMs), clock: clock)
        await world.engine.inventory.verifyInvariants()
        try await checkReads(world, keptStatus: 409)
        try Self.damage(directory, "UPDATE groups SET status = 99 WHERE id = \(Int64(bitPattern: try #require(GroupID(formed)).rawValue))")
        let unreadable = await world.showGroup(formed)
        #expect(unreadable.status == 503 && unreadable.errorCode == "unavailable")
        await world.stop()
    }

    @Test func retiredBatchesDoNotCountTowardTheBoundOnBatches() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let startMs = Self.startMs, clock = ManualClock(startMs: Self.startMs)
        var config = Self.groupAndCouponConfig(directory, nowMs: startMs)
        config.journal.enabled = false
        let world = try await TestEngine.start(config: config, clock: clock)
        clock.advance(ms: 3_600_000 + 8 * Self.dayMs + 1)
        #expect(await world.engine.retireEnded().contains("c2"))
        // c1 and c2 are configured, c2 retired: 999 more fit under the bound of 1 000.
        func create(_ index: Int) async -> Bool {
            let batch = CouponBatchConfig(
                id: "b\(index)", total: 10, valueFen: 100, minSpendFen: 0, perUser: 1, perIP: 1,
                startsAtMs: clock.nowMs(), endsAtMs: clock.nowMs() + Self.dayMs, validForMs: Self.dayMs)
            if case .success = await world.engine.createCouponBatch(batch, body: Array("{}".utf8), answer: nil) { return true }
            return false
        }
        var created = 0
        for index in 0..<(ConfigLimits.couponsMax - 1) where await create(index) { created += 1 }
        #expect(created == ConfigLimits.couponsMax - 1)
        #expect(await create(ConfigLimits.couponsMax) == false)
    }
}

extension Result {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
