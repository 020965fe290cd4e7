import Foundation
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal
@testable import InventoryActor

/// A seeded random simulation of the engine against a small reference model.
///
/// Each step is a burst of concurrent reserves, payments and cancels, a run of group-buy and
/// coupon operations (open, join, pay or cancel a member, claim, redeem; checked exactly,
/// SimulationTests+GroupsAndCoupons.swift), an expiry sweep (group deadlines included), a
/// clock jump, or a restart from SQLite. Outcomes of a burst may interleave in any order, so
/// each outcome is checked against the bounds every serial order allows; then the model takes
/// the observed outcome and the engine must match it exactly: every order's status and
/// transaction, every ledger's counters, every invariant. A failure names its seed; rerun one
/// seed with `SIM_SEED=<seed> swift test --filter SimulationTests`.
@Suite struct SimulationTests {
    static let seeds = ProcessInfo.processInfo.environment["SIM_SEED"].flatMap(UInt64.init).map { [$0] } ?? Array(UInt64(1)...UInt64(200))
    static let stepsPerSeed = 40
    static let nowMs: Int64 = 1_795_000_000_000
    static let windowMs: Int64 = 10_000
    static let skus: [(sku: String, stock: Int64, limit: Int32, price: Int64)] = [("A1", 3, 2, 990), ("B2", 5, 1, 4900), ("C3", 2, 2, 100)]
    static let users = ["u1", "u2", "u3", "u4", "u5", "u6"]

    struct ModelOrder: Equatable {
        var id: String
        var sku: String
        var user: String
        var qty: Int64
        var amount: Int64
        var expiresAtMs: Int64
        var status: OrderStatus
        var transaction: String?
        /// The coupon redeemed (seckill orders) or the group joined (group orders).
        var coupon: String? = nil
        var group: String? = nil
    }

    struct Model {
        var orders: [String: ModelOrder] = [:]
        var totals: [String: Int64] = Dictionary(uniqueKeysWithValues: SimulationTests.skus.map { ($0.sku, $0.stock) })
        /// Groups, group orders and coupons.
        var claims = ClaimModel()

        func counters(_ sku: String) -> StockCounters {
            var reserved: Int64 = 0
            var sold: Int64 = 0
            for order in orders.values where order.sku == sku {
                if order.status.holdsReserved { reserved += order.qty }
                if order.status.holdsSold { sold += order.qty }
            }
            let total = totals[sku]!
            return StockCounters(total: total, available: total - reserved - sold, reserved: reserved, sold: sold)
        }

        func held(_ user: String, _ sku: String) -> Int64 {
            orders.values.filter { $0.user == user && $0.sku == sku && $0.status.countsTowardLimit }.reduce(0) { $0 + $1.qty }
        }
    }

    enum Op: Sendable {
        case reserve(user: String, sku: String, qty: Int64)
        case pay(order: String, transaction: String, amount: Int64, nonce: String)
        case cancel(order: String, user: String)
    }

    enum Outcome: Sendable {
        case reserved(Order)
        case rejected(Rejection)
        case paid(PaymentAck)
        case canceled(Order)
    }

    @Test(arguments: seeds)
    func simulation(seed: UInt64) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        var rng = SplitMix64(state: seed)
        let clock = ManualClock(startMs: Self.nowMs)
        let items = Self.skus.map { ItemConfig(sku: $0.sku, name: $0.sku, priceFen: $0.price, stock: $0.stock, limitPerUser: $0.limit, groupSize: nil, groupPriceFen: nil) }
        var config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, paymentWindowMs: Self.windowMs, shards: 2)
        config.events = [
            EventConfig(id: "e1", kind: .seckill, startsAtMs: Self.nowMs - 1, endsAtMs: Self.nowMs + 86_400_000, items: items),
            Self.groupEvent,
        ]
        config.groupWindowMs = Self.groupWindowMs
        config.coupons = [Self.couponBatch]
        var world = try await TestEngine.start(config: config, clock: clock)
        var model = Model()
        var transactions = 0

        for step in 0..<Self.stepsPerSeed {
            let context = "seed \(seed) step \(step)"
            let roll = Int.random(in: 0..<100, using: &rng)
            if roll < 50 {
                // A burst of concurrent operations, each on a different order.
                var ops: [Op] = []
                var touched: Set<String> = []
                let ids = model.orders.keys.sorted()
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    let kind = Int.random(in: 0..<10, using: &rng)
                    if kind < 5 || ids.isEmpty {
                        ops.append(.reserve(user: Self.users.randomElement(using: &rng)!, sku: Self.skus.randomElement(using: &rng)!.sku, qty: Int64.random(in: 1...2, using: &rng)))
                    } else if let id = ids.randomElement(using: &rng), touched.insert(id).inserted {
                        let order = model.orders[id]!
                        if kind < 8 {
                            let reuse = order.transaction != nil && Bool.random(using: &rng)
                            transactions += 1
                            let amount = Int.random(in: 0..<10, using: &rng) == 0 ? order.amount + 1 : order.amount
                            ops.append(.pay(order: id, transaction: reuse ? order.transaction! : "tx\(transactions)", amount: amount, nonce: "\(seed)-\(step)-\(ops.count)"))
                        } else {
                            let owner = Int.random(in: 0..<5, using: &rng) > 0
                            ops.append(.cancel(order: id, user: owner ? order.user : "intruder"))
                        }
                    }
                }
                let engine = world.engine
                let outcomes = await withTaskGroup(of: (Int, Outcome).self) { group in
                    for (index, op) in ops.enumerated() {
                        group.addTask { (index, await Self.run(op, engine: engine, nowMs: clock.nowMs())) }
                    }
                    var results = [Outcome?](repeating: nil, count: ops.count)
                    for await (index, outcome) in group { results[index] = outcome }
                    return results.map { $0! }
                }
                model = Self.check(ops: ops, outcomes: outcomes, before: model, nowMs: clock.nowMs(), context: context)
            } else if roll < 68 {
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    await Self.claimStep(&model, engine: world.engine, nowMs: clock.nowMs(), rng: &rng, context: context)
                }
            } else if roll < 82 {
                clock.advance(ms: Int64.random(in: 0...12_000, using: &rng))
                _ = await world.engine.expireDue()
                Self.sweep(&model, nowMs: clock.nowMs())
            } else if roll < 91 {
                clock.advance(ms: Int64.random(in: 0...3_000, using: &rng))
            } else {
                await world.stop()
                world = try await TestEngine.start(config: config, clock: clock)
            }
            try await Self.compare(world.engine, model, context: context)
        }
        await world.stop()
    }

    static func run(_ op: Op, engine: SaleEngine, nowMs: Int64) async -> Outcome {
        switch op {
        case .reserve(let user, let sku, let qty):
            switch await engine.placeOrder(PlaceOrderRequest(user: user, event: "e1", sku: sku, qty: qty)) {
            case .success(let order): return .reserved(order)
            case .failure(let rejection): return .rejected(rejection)
            }
        case .pay(let order, let transaction, let amount, let nonce):
            let body = Array(#"{"order":"\#(order)","transaction":"\#(transaction)","amount":\#(amount)}"#.utf8)
            let ts = String(nowMs / 1000)
            let signature = PaymentSignature(secret: TestSecrets.payment).sign(timestamp: ts, nonce: nonce, body: body)
            switch await engine.notifyPayment(timestamp: ts, nonce: nonce, signature: signature, body: body) {
            case .success(let ack): return .paid(ack)
            case .failure(let rejection): return .rejected(rejection)
            }
        case .cancel(let order, let user):
            switch await engine.cancelOrder(order, user: user) {
            case .success(let order): return .canceled(order)
            case .failure(let rejection): return .rejected(rejection)
            }
        }
    }

    /// Checks each outcome against what some serial order of the burst allows; returns the model after.
    static func check(ops: [Op], outcomes: [Outcome], before: Model, nowMs: Int64, context: String) -> Model {
        var after = before
        // Units a burst took from / gave back to each SKU, and units each user took, whatever the order.
        var taken: [String: Int64] = [:]
        var freed: [String: Int64] = [:]
        var takenByUser: [String: Int64] = [:]
        for (op, outcome) in zip(ops, outcomes) {
            switch (op, outcome) {
            case (.reserve(let user, let sku, _), .reserved(let order)):
                taken[sku, default: 0] += Int64(order.qty)
                takenByUser["\(user)/\(sku)", default: 0] += Int64(order.qty)
            case (.pay(let id, _, _, _), .paid(let ack)) where ack.late:
                let order = before.orders[id]!
                taken[order.sku, default: 0] += order.qty
                takenByUser["\(order.user)/\(order.sku)", default: 0] += order.qty
                if order.status == .pending { freed[order.sku, default: 0] += order.qty }
            case (.pay(let id, _, _, _), .paid(let ack)) where ack.status == .refundPending && before.orders[id]!.status == .pending:
                freed[before.orders[id]!.sku, default: 0] += before.orders[id]!.qty
            case (.cancel(let id, _), .canceled):
                freed[before.orders[id]!.sku, default: 0] += before.orders[id]!.qty
            case (.cancel(let id, _), .rejected(.orderClosed(.expired))) where before.orders[id]!.status == .pending:
                freed[before.orders[id]!.sku, default: 0] += before.orders[id]!.qty
            default: break
            }
        }
        for (op, outcome) in zip(ops, outcomes) {
            switch op {
            case .reserve(let user, let sku, let qty):
                let limit = Int64(skus.first { $0.sku == sku }!.limit)
                let available = before.counters(sku).available
                switch outcome {
                case .reserved(let order):
                    #expect(order.user == user && order.key.sku == sku && Int64(order.qty) == qty && order.status == .pending, "\(context)")
                    #expect(order.expiresAtMs == nowMs + windowMs, "\(context)")
                    after.orders[order.id.description] = ModelOrder(
                        id: order.id.description, sku: sku, user: user, qty: qty, amount: order.amountFen, expiresAtMs: order.expiresAtMs, status: .pending, transaction: nil)
                    #expect(order.amountFen == qty * skus.first { $0.sku == sku }!.price, "\(context)")
                case .rejected(.limitExceeded):
                    #expect(before.held(user, sku) + takenByUser["\(user)/\(sku)", default: 0] + qty > limit, "\(context): limit_exceeded without cause")
                case .rejected(.soldOut):
                    #expect(available - taken[sku, default: 0] < qty, "\(context): sold_out with stock left")
                case .rejected(.badRequest):
                    #expect(qty > limit, "\(context)")
                default:
                    Issue.record("\(context): unexpected reserve outcome \(outcome)")
                }
            case .pay(let id, let transaction, let amount, _):
                let order = before.orders[id]!
                let isLate = order.status == .expired || order.status == .canceled || (order.status == .pending && nowMs >= order.expiresAtMs)
                switch outcome {
                case .rejected(.amountMismatch):
                    #expect(amount != order.amount, "\(context)")
                case .paid(let ack) where amount == order.amount:
                    if order.status == .paid || order.status == .refundPending {
                        if transaction == order.transaction {
                            #expect(ack.duplicate && ack.status == order.status, "\(context): duplicate")
                        } else {
                            #expect(ack.refundTransaction == transaction && ack.status == order.status, "\(context): double payment")
                        }
                    } else if isLate && order.coupon != nil {
                        // Its coupon went back at expiry: never paid late, always refunded.
                        #expect(ack.status == .refundPending && !ack.late, "\(context): late coupon order")
                        after.orders[id]!.status = .refundPending
                        after.orders[id]!.transaction = transaction
                        after.claims.coupons[order.coupon!]?.state = .available
                    } else if isLate {
                        let ownRelease = order.status == .pending ? order.qty : 0
                        if ack.late {
                            #expect(ack.status == .paid, "\(context)")
                            #expect(before.counters(order.sku).available + freed[order.sku, default: 0] >= order.qty, "\(context): late payment took stock that was not there")
                            after.orders[id]!.status = .paid
                        } else {
                            #expect(ack.status == .refundPending, "\(context)")
                            #expect(before.counters(order.sku).available + ownRelease - taken[order.sku, default: 0] < order.qty, "\(context): refund while stock was free")
                            after.orders[id]!.status = .refundPending
                        }
                        after.orders[id]!.transaction = transaction
                    } else {
                        #expect(ack.status == .paid && !ack.late && !ack.duplicate, "\(context): on-time payment")
                        after.orders[id]!.status = .paid
                        after.orders[id]!.transaction = transaction
                        if let coupon = order.coupon { after.claims.coupons[coupon]?.state = .spent(id) }
                    }
                default:
                    Issue.record("\(context): unexpected payment outcome \(outcome) for \(order)")
                }
            case .cancel(let id, let user):
                let order = before.orders[id]!
                switch outcome {
                case .rejected(.unknownOrder):
                    #expect(user != order.user, "\(context)")
                case .canceled(let canceled):
                    #expect(user == order.user && order.status == .pending && nowMs < order.expiresAtMs && canceled.status == .canceled, "\(context)")
                    after.orders[id]!.status = .canceled
                    if let coupon = order.coupon { after.claims.coupons[coupon]?.state = .available }
                case .rejected(.orderClosed(let status)):
                    #expect(user == order.user, "\(context)")
                    if order.status == .pending {
                        #expect(nowMs >= order.expiresAtMs && status == .expired, "\(context)")
                        after.orders[id]!.status = .expired
                        if let coupon = order.coupon { after.claims.coupons[coupon]?.state = .available }
                    } else {
                        #expect(status == order.status, "\(context)")
                    }
                default:
                    Issue.record("\(context): unexpected cancel outcome \(outcome)")
                }
            }
        }
        return after
    }

    /// The engine must hold exactly the model's orders and counters.
    static func compare(_ engine: SaleEngine, _ model: Model, context: String) async throws {
        await engine.inventory.verifyInvariants()
        for sku in skus.map(\.sku) {
            let counters = await engine.inventory.counters(LedgerKey(event: "e1", sku: sku))
            #expect(counters == model.counters(sku), "\(context): \(sku)")
            #expect(counters!.sold <= counters!.total, "\(context): oversold")
        }
        for (id, expected) in model.orders {
            let order = await engine.order(id)
            #expect(order?.status == expected.status && order?.transaction == expected.transaction, "\(context): order \(id) is \(String(describing: order)), model says \(expected)")
        }
        await compareClaims(engine, model, context: context)
    }
}
