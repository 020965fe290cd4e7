import Foundation
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import InventoryActor

/// Group-buy (§3.5) through the buyer API (no socket): every error code in a table,
/// a group forming, a group failing at its deadline, slots freed by expiry, and 500 concurrent
/// joins on one group.
@Suite struct GroupBuyTests {
    static let nowMs: Int64 = 1_795_000_000_000
    static let paymentWindowMs: Int64 = 60_000
    static let groupWindowMs: Int64 = 600_000

    static func groupItem(stock: Int64, limit: Int32 = 1, size: Int = 3) -> ItemConfig {
        ItemConfig(sku: "G1", name: "Tea set", priceFen: 8800, stock: stock, limitPerUser: limit, groupSize: size, groupPriceFen: 5900)
    }

    func withEngine(stock: Int64 = 4, limit: Int32 = 1, size: Int = 3, _ body: (TestEngine) async throws -> Void) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let item = Self.groupItem(stock: stock, limit: limit, size: size)
        let events = [
            EventConfig(id: "g1", kind: .groupbuy, startsAtMs: Self.nowMs - 60_000, endsAtMs: Self.nowMs + 86_400_000, items: [item]),
            EventConfig(id: "gsoon", kind: .groupbuy, startsAtMs: Self.nowMs + 60_000, endsAtMs: Self.nowMs + 120_000, items: [item]),
            EventConfig(id: "gover", kind: .groupbuy, startsAtMs: Self.nowMs - 120_000, endsAtMs: Self.nowMs - 60_000, items: [item]),
        ]
        let config = makeTestConfig(
            dataDirectory: directory.path, nowMs: Self.nowMs, paymentWindowMs: Self.paymentWindowMs, events: events,
            groupWindowMs: Self.groupWindowMs)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        try await body(world)
        await world.engine.inventory.verifyInvariants()
        await world.stop()
    }

    func counters(_ world: TestEngine, event: String = "g1") async -> StockCounters {
        await world.engine.inventory.counters(LedgerKey(event: event, sku: "G1"))!
    }

    /// Ids learned along the table (groups and orders created by earlier rows).
    final class Names: @unchecked Sendable {
        var groups: [String: String] = [:]
        var orders: [String: String] = [:]
    }

    struct Row: Sendable {
        var name: String
        var send: @Sendable (TestEngine, Names) async -> APIResponse
        var status: Int
        var error: String?
        var counters: (available: Int64, reserved: Int64, sold: Int64)
        var after: (@Sendable (APIResponse, Names) -> Void)? = nil
    }

    @Test func everyGroupErrorCodeInATable() async throws {
        try await withEngine(stock: 4) { world in
            let names = Names()
            func opened(_ label: String) -> @Sendable (APIResponse, Names) -> Void {
                { response, names in
                    names.groups[label] = response.json["group"]?.stringValue
                    names.orders[label] = response.json["order"]?.stringValue
                }
            }
            let rows: [Row] = [
                Row(name: "no token", send: { w, _ in await w.api.respond(to: APIRequest(method: "POST", path: "/v1/events/g1/groups", body: Array(#"{"sku":"G1"}"#.utf8))) }, status: 401, error: "unauthorized", counters: (4, 0, 0)),
                Row(name: "unreadable body", send: { w, _ in await w.api.respond(to: APIRequest(method: "POST", path: "/v1/events/g1/groups", authorization: w.bearer("u1"), body: Array("{".utf8))) }, status: 400, error: "bad_request", counters: (4, 0, 0)),
                Row(name: "unknown event", send: { w, _ in await w.openGroup("u1", event: "nope") }, status: 404, error: "unknown_event", counters: (4, 0, 0)),
                Row(name: "unknown sku", send: { w, _ in await w.openGroup("u1", sku: "ZZ") }, status: 404, error: "unknown_sku", counters: (4, 0, 0)),
                Row(name: "seckill item", send: { w, _ in await w.openGroup("u1", sku: "A1", event: "e1") }, status: 400, error: "bad_request", counters: (4, 0, 0)),
                Row(name: "not started", send: { w, _ in await w.openGroup("u1", event: "gsoon") }, status: 425, error: "not_started", counters: (4, 0, 0)),
                Row(name: "ended", send: { w, _ in await w.openGroup("u1", event: "gover") }, status: 410, error: "ended", counters: (4, 0, 0)),
                Row(name: "u1 opens A", send: { w, _ in await w.openGroup("u1") }, status: 201, error: nil, counters: (3, 1, 0), after: opened("A")),
                Row(name: "unknown group id", send: { w, _ in await w.join("u2", group: "g7777777") }, status: 404, error: "unknown_group", counters: (3, 1, 0)),
                Row(name: "malformed group id", send: { w, _ in await w.join("u2", group: "o1") }, status: 404, error: "unknown_group", counters: (3, 1, 0)),
                Row(name: "leader joins again", send: { w, n in await w.join("u1", group: n.groups["A"]!) }, status: 409, error: "already_member", counters: (3, 1, 0)),
                Row(name: "u2 joins A", send: { w, n in await w.join("u2", group: n.groups["A"]!) }, status: 201, error: nil, counters: (2, 2, 0), after: { r, n in n.orders["A2"] = r.json["order"]?.stringValue }),
                Row(name: "u3 joins A", send: { w, n in await w.join("u3", group: n.groups["A"]!) }, status: 201, error: nil, counters: (1, 3, 0), after: { r, n in n.orders["A3"] = r.json["order"]?.stringValue }),
                Row(name: "u4 finds A full", send: { w, n in await w.join("u4", group: n.groups["A"]!) }, status: 409, error: "group_full", counters: (1, 3, 0)),
                Row(name: "u4 opens B", send: { w, _ in await w.openGroup("u4") }, status: 201, error: nil, counters: (0, 4, 0), after: opened("B")),
                Row(name: "u5 finds no stock", send: { w, n in await w.join("u5", group: n.groups["B"]!) }, status: 409, error: "sold_out", counters: (0, 4, 0)),
                Row(name: "limit before stock", send: { w, _ in await w.openGroup("u1") }, status: 409, error: "limit_exceeded", counters: (0, 4, 0)),
                Row(name: "u1 pays", send: { w, n in await w.pay(order: n.orders["A"]!, transaction: "t1", amount: 5900) }, status: 200, error: nil, counters: (0, 4, 0)),
                Row(name: "u2 pays", send: { w, n in await w.pay(order: n.orders["A2"]!, transaction: "t2", amount: 5900) }, status: 200, error: nil, counters: (0, 4, 0)),
                Row(name: "u3 pays: formed", send: { w, n in await w.pay(order: n.orders["A3"]!, transaction: "t3", amount: 5900) }, status: 200, error: nil, counters: (0, 1, 3)),
                Row(name: "join a formed group", send: { w, n in await w.join("u6", group: n.groups["A"]!) }, status: 409, error: "group_closed", counters: (0, 1, 3)),
                Row(name: "join after the deadline fails the group", send: { w, n in
                    w.clock.advance(ms: GroupBuyTests.groupWindowMs)
                    return await w.join("u6", group: n.groups["B"]!)
                }, status: 409, error: "group_closed", counters: (1, 0, 3)),
            ]
            for row in rows {
                let response = await row.send(world, names)
                #expect(response.status == row.status, "\(row.name): \(response.bodyText)")
                #expect(response.errorCode == row.error, "\(row.name): \(response.bodyText)")
                let after = await counters(world)
                #expect(
                    (after.available, after.reserved, after.sold) == row.counters,
                    "\(row.name): counters \(after), expected \(row.counters)")
                row.after?(response, names)
            }
            let formed = await world.showGroup(names.groups["A"]!)
            #expect(formed.json["status"]?.stringValue == "formed" && formed.json["paid"]?.intValue == 3)
            let failed = await world.showGroup(names.groups["B"]!)
            #expect(failed.json["status"]?.stringValue == "failed" && failed.json["members"]?.intValue == 0)
        }
    }

    @Test func pausedEventRefusesJoins() async throws {
        try await withEngine { world in
            let opened = await world.openGroup("u1")
            _ = await world.engine.setPaused("g1", true)
            let join = await world.join("u2", group: opened.json["group"]!.stringValue!)
            #expect(join.status == 503 && join.errorCode == "paused")
        }
    }

    @Test func threeBuyersThreePaymentsFormTheGroup() async throws {
        try await withEngine(stock: 10) { world in
            let opened = await world.openGroup("alice")
            #expect(opened.status == 201)
            #expect(opened.json["members"]?.intValue == 1 && opened.json["status"]?.stringValue == "open" && opened.json["size"]?.intValue == 3)
            #expect(opened.json["amount"]?.intValue == 5900)
            let group = opened.json["group"]!.stringValue!
            let bob = await world.join("bob", group: group)
            let carol = await world.join("carol", group: group)
            #expect(carol.json["members"]?.intValue == 3)
            let orders = [opened, bob, carol].map { $0.json["order"]!.stringValue! }
            var answers: [String] = []
            for (index, order) in orders.enumerated() {
                let paid = await world.pay(order: order, transaction: "t\(index)", amount: 5900)
                answers.append(paid.json["status"]?.stringValue ?? "?")
            }
            #expect(answers == ["paid", "paid", "formed"])
            for order in orders {
                #expect(await world.engine.order(order)?.status == .formed)
            }
            let view = await world.showGroup(group)
            #expect(view.json["status"]?.stringValue == "formed" && view.json["members"]?.intValue == 3 && view.json["paid"]?.intValue == 3)
            let event = await world.api.respond(to: APIRequest(method: "GET", path: "/v1/events/g1"))
            #expect(event.json["groups_formed"]?.intValue == 1)
            #expect(await counters(world) == StockCounters(total: 10, available: 7, reserved: 0, sold: 3))
            // A duplicate notification of a formed order is a duplicate, not a second formation.
            let again = await world.pay(order: orders[2], transaction: "t2", amount: 5900)
            #expect(again.json["status"]?.stringValue == "formed" && again.json["duplicate"]?.boolValue == true)
        }
    }

    @Test func unformedGroupFailsAtItsDeadline() async throws {
        try await withEngine(stock: 10) { world in
            let opened = await world.openGroup("u1")
            let group = opened.json["group"]!.stringValue!
            let leader = opened.json["order"]!.stringValue!
            #expect(await world.pay(order: leader, transaction: "t1", amount: 5900).json["status"]?.stringValue == "paid")
            // A member joining late has a payment deadline capped at the group's.
            world.clock.advance(ms: Self.groupWindowMs - 30_000)
            let joined = await world.join("u2", group: group)
            #expect(joined.json["order_expires_at"]?.stringValue == rfc3339(ms: Self.nowMs + Self.groupWindowMs))
            let member = joined.json["order"]!.stringValue!
            #expect(await counters(world) == StockCounters(total: 10, available: 8, reserved: 2, sold: 0))
            world.clock.advance(ms: 30_000)
            await world.engine.expireDue()
            #expect(await world.engine.order(leader)?.status == .refundPending)
            #expect(await world.engine.order(member)?.status == .canceled)
            #expect(await world.showGroup(group).json["status"]?.stringValue == "failed")
            #expect(await counters(world) == StockCounters(total: 10, available: 10, reserved: 0, sold: 0))
            // A payment arriving after the failure is refunded.
            let late = await world.pay(order: member, transaction: "t2", amount: 5900)
            #expect(late.json["status"]?.stringValue == "refund_pending")
            #expect(await counters(world) == StockCounters(total: 10, available: 10, reserved: 0, sold: 0))
        }
    }

    @Test func expiredMemberFreesItsSlotAndMayPayLateIntoTheGroup() async throws {
        try await withEngine(stock: 10) { world in
            let opened = await world.openGroup("u1")
            let group = opened.json["group"]!.stringValue!
            let u2 = await world.join("u2", group: group).json["order"]!.stringValue!
            world.clock.advance(ms: 10_000)
            _ = await world.join("u3", group: group)
            #expect(await world.join("u4", group: group).errorCode == "group_full")
            // u1 and u2 pass their payment deadline; joining does not wait for the sweep.
            world.clock.advance(ms: Self.paymentWindowMs - 10_000)
            let u4 = await world.join("u4", group: group)
            #expect(u4.status == 201 && u4.json["members"]?.intValue == 2, "\(u4.bodyText)")
            #expect(await world.engine.order(u2)?.status == .expired)
            // u2 pays late: the group is open with room and stock, so u2 is back in it.
            let late = await world.pay(order: u2, transaction: "t2", amount: 5900)
            #expect(late.json["status"]?.stringValue == "paid" && late.json["late"]?.boolValue == true)
            #expect(await world.showGroup(group).json["members"]?.intValue == 3)
            // Full again: a late payment of u1 finds no room and is refunded.
            let u1 = await world.pay(order: opened.json["order"]!.stringValue!, transaction: "t1", amount: 5900)
            #expect(u1.json["status"]?.stringValue == "refund_pending")
        }
    }

    @Test func canceledMemberFreesItsSlot() async throws {
        try await withEngine(stock: 10) { world in
            let opened = await world.openGroup("u1")
            let group = opened.json["group"]!.stringValue!
            let u2 = await world.join("u2", group: group).json["order"]!.stringValue!
            _ = await world.join("u3", group: group)
            let cancel = await world.api.respond(to: APIRequest(method: "POST", path: "/v1/orders/\(u2)/cancel", authorization: world.bearer("u2")))
            #expect(cancel.json["status"]?.stringValue == "canceled")
            #expect(await world.join("u4", group: group).status == 201)
        }
    }

    @Test func groupsAndMembersSurviveARestart() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let events = [EventConfig(id: "g1", kind: .groupbuy, startsAtMs: Self.nowMs - 60_000, endsAtMs: Self.nowMs + 86_400_000, items: [Self.groupItem(stock: 10)])]
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, paymentWindowMs: Self.paymentWindowMs, events: events, groupWindowMs: Self.groupWindowMs)
        let clock = ManualClock(startMs: Self.nowMs)
        var world = try await TestEngine.start(config: config, clock: clock)
        let formedGroup = await world.openGroup("a1")
        let formed = formedGroup.json["group"]!.stringValue!
        var orders = [formedGroup.json["order"]!.stringValue!]
        for user in ["a2", "a3"] { orders.append(await world.join(user, group: formed).json["order"]!.stringValue!) }
        for (index, order) in orders.enumerated() { _ = await world.pay(order: order, transaction: "t\(index)", amount: 5900) }
        let open = await world.openGroup("b1").json["group"]!.stringValue!
        let b2 = await world.join("b2", group: open).json["order"]!.stringValue!
        _ = await world.pay(order: b2, transaction: "tb2", amount: 5900)
        await world.stop()

        world = try await TestEngine.start(config: config, clock: clock)
        #expect(await world.showGroup(formed).json["status"]?.stringValue == "formed")
        let view = await world.showGroup(open)
        #expect(view.json["status"]?.stringValue == "open" && view.json["members"]?.intValue == 2 && view.json["paid"]?.intValue == 1)
        #expect(await world.join("b2", group: open).errorCode == "already_member")
        #expect(await world.join("b3", group: open).status == 201)
        #expect(await world.join("b4", group: open).errorCode == "group_full")
        let event = await world.api.respond(to: APIRequest(method: "GET", path: "/v1/events/g1"))
        #expect(event.json["groups_formed"]?.intValue == 1)
        #expect(await world.engine.inventory.counters(LedgerKey(event: "g1", sku: "G1")) == StockCounters(total: 10, available: 4, reserved: 3, sold: 3))
        // The reopened engine still fails the open group at its recorded deadline.
        clock.advance(ms: Self.groupWindowMs)
        await world.engine.expireDue()
        #expect(await world.showGroup(open).json["status"]?.stringValue == "failed")
        #expect(await world.engine.order(b2)?.status == .refundPending)
        await world.engine.inventory.verifyInvariants()
        await world.stop()
    }

    @Test func fiveHundredConcurrentJoinsLeaveExactlyThreeLiveMembers() async throws {
        try await withEngine(stock: 1_000, size: 3) { world in
            let group = await world.openGroup("leader").json["group"]!.stringValue!
            let tokens = (0..<500).map { world.bearer("j\($0)") }
            let api = world.api
            let statuses = await withTaskGroup(of: Int.self) { tasks in
                for token in tokens {
                    tasks.addTask { await api.respond(to: APIRequest(method: "POST", path: "/v1/groups/\(group)/join", authorization: token)).status }
                }
                var statuses: [Int] = []
                for await status in tasks { statuses.append(status) }
                return statuses
            }
            #expect(statuses.filter { $0 == 201 }.count == 2)
            #expect(statuses.filter { $0 == 409 }.count == 498)
            let view = await world.showGroup(group)
            #expect(view.json["members"]?.intValue == 3)
            #expect(await counters(world) == StockCounters(total: 1_000, available: 997, reserved: 3, sold: 0))
        }
    }

    @Test func groupIDsRoundTripAndRejectOtherForms() {
        let id = GroupID(sequence: 42, slot: 513)
        #expect(GroupID(id.description) == id && id.description.hasPrefix("g"))
        #expect(GroupID(id.slot == 513 ? "o2a" : "") == nil)
        #expect(GroupID("g") == nil && GroupID("gXYZ") == nil && GroupID("g" + String(repeating: "f", count: 17)) == nil)
    }
}

/// The group's member list in the book (`@testable`): bounded however often members come and go.
@Suite struct GroupMemberListTests {
    @Test func joinAndCancelCyclesDoNotGrowAGroupsMemberList() {
        var book = OrderBook()
        let key = LedgerKey(event: "g1", sku: "G1")
        book.addLedger(key, total: 100, limitPerUser: 1)
        let open = OpenGroupRequest(key: key, user: "leader", size: 3, priceFen: 100, nowMs: 0, paymentDeadlineMs: 60_000, groupDeadlineMs: 3_600_000)
        guard case .joined(let view, _) = book.openGroup(open) else { Issue.record("open"); return }
        let id = view.group.id
        var lastCanceled: OrderID?
        for cycle in 0..<500 {
            guard case .joined(_, let order) = book.joinGroup(id, user: "churn", nowMs: Int64(cycle), paymentDeadlineMs: 60_000) else {
                Issue.record("join \(cycle)")
                return
            }
            _ = book.cancel(order.id, user: "churn", nowMs: Int64(cycle))
            lastCanceled = order.id
        }
        let members = book.groups.groups[id]!.members
        #expect(members.count <= 2 * 3, "\(members.count) member orders kept after 500 join/cancel cycles")
        // Still a working group: two more join, the leader's unit still counts.
        guard case .joined(let after, _) = book.joinGroup(id, user: "u2", nowMs: 1_000, paymentDeadlineMs: 60_000) else {
            Issue.record("join after churn")
            return
        }
        #expect(after.members == 2)
        // A late payment of a canceled member, dropped from the list, puts it back in its group.
        guard case .latePaid(let back) = book.pay(lastCanceled!, transaction: "t-late", amountFen: 100, nowMs: 2_000) else {
            Issue.record("late payment")
            return
        }
        #expect(back.status == .paid)
        #expect(book.group(id)?.members == 3 && book.group(id)?.paid == 1)
        book.verifyInvariants()
        book.verifyGroupInvariants()
    }
}
