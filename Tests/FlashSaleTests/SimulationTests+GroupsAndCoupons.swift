import Foundation
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import InventoryActor

/// The group-buy and coupon half of the simulation: operations run one at a time and each is
/// predicted exactly by the model (groups, member orders, coupons, the batch's counts).
extension SimulationTests {
    static let groupWindowMs: Int64 = 25_000
    static let groupSKU = (sku: "G1", stock: Int64(4), limit: Int32(2), size: Int32(2), price: Int64(500))
    static let groupEvent = EventConfig(
        id: "g1", kind: .groupbuy, startsAtMs: nowMs - 1, endsAtMs: nowMs + 86_400_000,
        items: [ItemConfig(sku: groupSKU.sku, name: "G", priceFen: 900, stock: groupSKU.stock, limitPerUser: groupSKU.limit, groupSize: Int(groupSKU.size), groupPriceFen: groupSKU.price)])
    static let couponBatch = CouponBatchConfig(
        id: "k1", total: 5, valueFen: 300, minSpendFen: 1_000, perUser: 2, perIP: 3,
        startsAtMs: nowMs - 1, endsAtMs: nowMs + 86_400_000, validForMs: 30_000)
    static let clientIPs = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]

    struct ModelGroup: Equatable {
        var id: String
        var expiresAtMs: Int64
        var status: GroupStatus
        var members: [String]
    }

    enum ModelCouponState: Equatable {
        case available
        case held(String)
        case spent(String)
    }

    struct ModelCoupon: Equatable {
        var owner: String
        var clientIP: String
        var expiresAtMs: Int64
        var state: ModelCouponState
    }

    struct ClaimModel {
        var groups: [String: ModelGroup] = [:]
        var groupOrders: [String: ModelOrder] = [:]
        var coupons: [String: ModelCoupon] = [:]
        var formed = 0
        var transactions = 0

        var groupCounters: StockCounters {
            var reserved: Int64 = 0
            var sold: Int64 = 0
            for order in groupOrders.values {
                if order.status == .pending || order.status == .paid { reserved += 1 }
                if order.status == .formed { sold += 1 }
            }
            return StockCounters(total: groupSKU.stock, available: groupSKU.stock - reserved - sold, reserved: reserved, sold: sold)
        }

        func held(_ user: String) -> Int64 {
            Int64(groupOrders.values.filter { $0.user == user && $0.status.countsTowardLimit }.count)
        }

        func live(_ group: String) -> [ModelOrder] {
            groups[group]!.members.map { groupOrders[$0]! }.filter { $0.status == .pending || $0.status == .paid }
        }

        mutating func fail(_ group: String) {
            for id in groups[group]!.members {
                switch groupOrders[id]!.status {
                case .pending: groupOrders[id]!.status = .canceled
                case .paid: groupOrders[id]!.status = .refundPending
                default: break
                }
            }
            groups[group]!.status = .failed
        }

        mutating func failIfDue(_ group: String, nowMs: Int64) {
            if groups[group]!.status == .open && nowMs >= groups[group]!.expiresAtMs { fail(group) }
        }

        mutating func formIfComplete(_ group: String) {
            let paid = groups[group]!.members.filter { groupOrders[$0]!.status == .paid }
            guard groups[group]!.status == .open, paid.count == Int(groupSKU.size) else { return }
            for id in paid { groupOrders[id]!.status = .formed }
            groups[group]!.status = .formed
            formed += 1
        }
    }

    /// The engine's sweep: due groups fail, then due orders expire and give their coupons back.
    static func sweep(_ model: inout Model, nowMs: Int64) {
        for id in model.claims.groups.keys.sorted() { model.claims.failIfDue(id, nowMs: nowMs) }
        for (id, order) in model.claims.groupOrders where order.status == .pending && order.expiresAtMs <= nowMs {
            model.claims.groupOrders[id]!.status = .expired
        }
        for (id, order) in model.orders where order.status == .pending && order.expiresAtMs <= nowMs {
            model.orders[id]!.status = .expired
            if let coupon = order.coupon { model.claims.coupons[coupon]?.state = .available }
        }
    }

    /// One group-buy or coupon operation, predicted exactly.
    static func claimStep(_ model: inout Model, engine: SaleEngine, nowMs: Int64, rng: inout SplitMix64, context: String) async {
        let user = users.randomElement(using: &rng)!
        let groupIDs = model.claims.groups.keys.sorted()
        let groupOrderIDs = model.claims.groupOrders.keys.sorted()
        switch Int.random(in: 0..<6, using: &rng) {
        case 0 where groupIDs.count < 6 || groupIDs.isEmpty:
            let result = await engine.openGroup(user: user, event: "g1", sku: groupSKU.sku)
            var claims = model.claims
            let expected: Rejection? =
                claims.held(user) + 1 > Int64(groupSKU.limit) ? .limitExceeded
                : claims.groupCounters.available < 1 ? .soldOut : nil
            switch (result, expected) {
            case (.success(let membership), nil):
                let group = membership.view.group.id.description
                let order = membership.order
                #expect(order.expiresAtMs == min(nowMs + windowMs, nowMs + groupWindowMs) && order.amountFen == groupSKU.price, "\(context)")
                claims.groups[group] = ModelGroup(id: group, expiresAtMs: nowMs + groupWindowMs, status: .open, members: [order.id.description])
                claims.groupOrders[order.id.description] = ModelOrder(
                    id: order.id.description, sku: groupSKU.sku, user: user, qty: 1, amount: order.amountFen,
                    expiresAtMs: order.expiresAtMs, status: .pending, transaction: nil, group: group)
            case (.failure(let got), let want?) where got == want: break
            default: Issue.record("\(context): open by \(user) gave \(result), model expected \(String(describing: expected))")
            }
            model.claims = claims
        case 0, 1:
            let bogus = groupIDs.isEmpty || Int.random(in: 0..<10, using: &rng) == 0
            let group = bogus ? "g7fffff" : groupIDs.randomElement(using: &rng)!
            let result = await engine.joinGroup(group, user: user)
            var claims = model.claims
            var expected: Rejection? = nil
            if bogus {
                expected = .unknownGroup
            } else {
                claims.failIfDue(group, nowMs: nowMs)
                if claims.groups[group]!.status != .open {
                    expected = .groupClosed
                } else {
                    for id in claims.groups[group]!.members where claims.groupOrders[id]!.status == .pending && nowMs >= claims.groupOrders[id]!.expiresAtMs {
                        claims.groupOrders[id]!.status = .expired
                    }
                    let live = claims.live(group)
                    if live.contains(where: { $0.user == user }) {
                        expected = .alreadyMember
                    } else if live.count >= Int(groupSKU.size) {
                        expected = .groupFull
                    } else if claims.held(user) + 1 > Int64(groupSKU.limit) {
                        expected = .limitExceeded
                    } else if claims.groupCounters.available < 1 {
                        expected = .soldOut
                    }
                }
            }
            switch (result, expected) {
            case (.success(let membership), nil):
                let order = membership.order
                #expect(order.expiresAtMs == min(nowMs + windowMs, claims.groups[group]!.expiresAtMs), "\(context)")
                claims.groups[group]!.members.append(order.id.description)
                claims.groupOrders[order.id.description] = ModelOrder(
                    id: order.id.description, sku: groupSKU.sku, user: user, qty: 1, amount: order.amountFen,
                    expiresAtMs: order.expiresAtMs, status: .pending, transaction: nil, group: group)
                #expect(membership.view.members == claims.live(group).count, "\(context): members after join")
            case (.failure(let got), let want?) where got == want: break
            default: Issue.record("\(context): join of \(group) by \(user) gave \(result), model expected \(String(describing: expected))")
            }
            model.claims = claims
        case 2 where !groupOrderIDs.isEmpty:
            let id = groupOrderIDs.randomElement(using: &rng)!
            var claims = model.claims
            var order = claims.groupOrders[id]!
            claims.transactions += 1
            let transaction = order.transaction != nil && Bool.random(using: &rng) ? order.transaction! : "g\(claims.transactions)"
            let nonce = "gn\(claims.transactions)"
            let outcome = await run(.pay(order: id, transaction: transaction, amount: order.amount, nonce: nonce), engine: engine, nowMs: nowMs)
            let group = order.group!
            claims.failIfDue(group, nowMs: nowMs)
            order = claims.groupOrders[id]!
            if order.status == .pending && nowMs >= order.expiresAtMs {
                order.status = .expired
                claims.groupOrders[id] = order
            }
            var want = PaymentAck(status: order.status)
            switch order.status {
            case .pending:
                claims.groupOrders[id]!.status = .paid
                claims.groupOrders[id]!.transaction = transaction
                claims.formIfComplete(group)
                want = PaymentAck(status: claims.groupOrders[id]!.status)
            case .paid, .formed, .refundPending:
                want = transaction == order.transaction
                    ? PaymentAck(status: order.status, duplicate: true) : PaymentAck(status: order.status, refundTransaction: transaction)
            case .expired, .canceled:
                claims.groupOrders[id]!.transaction = transaction
                if claims.groups[group]!.status == .open && nowMs < claims.groups[group]!.expiresAtMs
                    && claims.live(group).count < Int(groupSKU.size) && claims.groupCounters.available >= 1
                {
                    claims.groupOrders[id]!.status = .paid
                    claims.formIfComplete(group)
                    want = PaymentAck(status: claims.groupOrders[id]!.status, late: true)
                } else {
                    claims.groupOrders[id]!.status = .refundPending
                    want = PaymentAck(status: .refundPending)
                }
            }
            guard case .paid(let got) = outcome, got == want else {
                Issue.record("\(context): payment of group order \(id) gave \(outcome), model expected \(want)")
                return
            }
            model.claims = claims
        case 2 where !groupOrderIDs.isEmpty, 3 where !groupOrderIDs.isEmpty:
            let id = groupOrderIDs.randomElement(using: &rng)!
            let order = model.claims.groupOrders[id]!
            let result = await engine.cancelOrder(id, user: order.user)
            switch (result, order.status) {
            case (.success(let canceled), .pending) where nowMs < order.expiresAtMs && canceled.status == .canceled:
                model.claims.groupOrders[id]!.status = .canceled
            case (.failure(.orderClosed(.expired)), .pending) where nowMs >= order.expiresAtMs:
                model.claims.groupOrders[id]!.status = .expired
            case (.failure(.orderClosed(let status)), let before) where before != .pending && status == before:
                break
            default:
                Issue.record("\(context): cancel of group order \(order) gave \(result)")
            }
        case 4 where model.claims.coupons.isEmpty || Bool.random(using: &rng):
            let clientIP = clientIPs.randomElement(using: &rng)!
            let result = await engine.claimCoupon(batch: couponBatch.id, user: user, clientIP: clientIP)
            let coupons = model.claims.coupons.values
            let expected: Rejection? =
                Int64(coupons.count) >= couponBatch.total ? .exhausted
                : coupons.filter({ $0.owner == user }).count >= couponBatch.perUser ? .limitExceeded
                : coupons.filter({ $0.clientIP == clientIP }).count >= couponBatch.perIP ? .ipLimitExceeded : nil
            switch (result, expected) {
            case (.success(let coupon), nil):
                #expect(coupon.expiresAtMs == nowMs + couponBatch.validForMs && coupon.owner == user, "\(context)")
                model.claims.coupons[coupon.code.description] = ModelCoupon(owner: user, clientIP: clientIP, expiresAtMs: coupon.expiresAtMs, state: .available)
            case (.failure(let got), let want?) where got == want: break
            default: Issue.record("\(context): claim by \(user) from \(clientIP) gave \(result), model expected \(String(describing: expected))")
            }
        default:
            // Redeem a coupon (sometimes another user's, sometimes on an item below min_spend).
            let codes = model.claims.coupons.keys.sorted()
            let code = codes.isEmpty ? "c-none" : codes.randomElement(using: &rng)!
            let item = Bool.random(using: &rng) ? skus[1] : skus[0]
            let qty: Int64 = 1
            let priceFen = item.price * qty
            let held = model.held(user, item.sku)
            let overLimit = held + qty > Int64(item.limit)
            let result = await engine.placeOrder(PlaceOrderRequest(user: user, event: "e1", sku: item.sku, qty: qty, coupon: code))
            var expected: Rejection? = nil
            if let coupon = model.claims.coupons[code], coupon.owner == user, coupon.state == .available, nowMs < coupon.expiresAtMs,
                priceFen >= couponBatch.minSpendFen
            {
                if overLimit {
                    expected = .limitExceeded
                } else if model.counters(item.sku).available < qty {
                    expected = .soldOut
                }
            } else {
                expected = overLimit ? .limitExceeded : .couponInvalid("")
            }
            switch (result, expected) {
            case (.success(let order), nil):
                let discount = min(couponBatch.valueFen, priceFen)
                #expect(order.amountFen == priceFen - discount && order.discountFen == discount && order.coupon == code, "\(context)")
                model.orders[order.id.description] = ModelOrder(
                    id: order.id.description, sku: item.sku, user: user, qty: qty, amount: order.amountFen,
                    expiresAtMs: order.expiresAtMs, status: .pending, transaction: nil, coupon: code)
                model.claims.coupons[code]!.state = .held(order.id.description)
            case (.failure(.couponInvalid), .couponInvalid?): break
            case (.failure(let got), let want?) where got == want: break
            default: Issue.record("\(context): redeem of \(code) by \(user) on \(item.sku) gave \(result), model expected \(String(describing: expected))")
            }
        }
    }

    /// The engine must hold exactly the model's groups, group orders and coupons.
    static func compareClaims(_ engine: SaleEngine, _ model: Model, context: String) async {
        await engine.inventory.verifyCouponInvariants()
        let claims = model.claims
        let counters = await engine.inventory.counters(LedgerKey(event: "g1", sku: groupSKU.sku))
        #expect(counters == claims.groupCounters, "\(context): G1 counters")
        for (id, expected) in claims.groups {
            let view = await engine.group(id)
            #expect(view?.group.status == expected.status, "\(context): group \(id) is \(String(describing: view?.group.status)), model says \(expected.status)")
            // Members shown: live ones, and those of a formed group.
            let shown = expected.members.filter { [.pending, .paid, .formed].contains(claims.groupOrders[$0]!.status) }.count
            #expect(view?.members == shown, "\(context): group \(id) members: engine \(String(describing: view?.group.members)), model \(expected.members)")
            #expect(view?.paid == expected.members.filter { [.paid, .formed].contains(claims.groupOrders[$0]!.status) }.count, "\(context): group \(id) paid")
            #expect((view?.members ?? 0) <= Int(groupSKU.size), "\(context): group \(id) over size")
        }
        for (id, expected) in claims.groupOrders {
            let order = await engine.order(id)
            #expect(order?.status == expected.status && order?.transaction == expected.transaction, "\(context): group order \(id) is \(String(describing: order)), model says \(expected)")
        }
        if let event = engine.catalog.event("g1") {
            #expect(await engine.groupsFormed(event) == claims.formed, "\(context): groups formed")
        }
        #expect(await engine.inventory.shard(forBatch: couponBatch.id).couponsIssued(couponBatch.id) == Int64(claims.coupons.count), "\(context): issued")
        #expect(Int64(claims.coupons.count) <= couponBatch.total, "\(context): batch over total")
        for (code, expected) in claims.coupons {
            let coupon = await engine.coupon(code)
            let state: ModelCouponState? =
                switch coupon?.state {
                case .available?: .available
                case .held(let order?, _)?: .held(order.description)
                case .spent(let order)?: .spent(order.description)
                default: nil
                }
            #expect(state == expected.state, "\(context): coupon \(code) is \(String(describing: coupon?.state)), model says \(expected.state)")
        }
    }
}
