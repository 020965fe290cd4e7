import FlashSaleJournal
import InventoryActor
import NIOCore

/// Coupons (§3.6): claims decided by the shard owning the batch; redemption as
/// hold-then-reserve across the coupon's shard and the SKU's shard, with compensation.
///
/// A coupon's hold, spend and release are never journaled by themselves: the order naming the
/// coupon is, and recovery derives the coupon's state from it (pending → held, paid → spent).
/// So only final outcomes reach the journal, and a crash between hold and reserve loses
/// nothing that was acknowledged.
extension SaleEngine {

    /// Claims a coupon of `batch` for `user` (`claimCoupon(batch:user:clientIP:on:answer:)`,
    /// run on one of the loops).
    public func claimCoupon(batch: String, user: String, clientIP: String) async -> Result<Coupon, Rejection> {
        await onALoop { loop, answer in self.claimCoupon(batch: batch, user: user, clientIP: clientIP, on: loop, answer: answer) }
    }

    /// Claims a coupon of `batch` for `user`, counted against `clientIP` for `per_ip`, on
    /// `loop` (one of the engine's): the batch's shard draws the code and decides in one step,
    /// and `answer` runs on `loop` once the claim is durable.
    public func claimCoupon(
        batch: String, user: String, clientIP: String, on loop: any EventLoop, answer: @escaping (Result<Coupon, Rejection>) -> Void
    ) {
        let here = ownLoop(loop)
        guard couponBatches.withLock({ $0[batch] != nil }) else { return answer(.failure(.unknownBatch)) }
        if let journal, !journal.acceptsWrites { return answer(.failure(.unavailable(journal.refusalReason))) }
        let slot = CouponCode.slot(batch: batch)
        let nowMs = clock.nowMs()
        onShard(inventory.shard(forBatch: batch), from: here, { shard -> Recorded<CouponClaimResult>? in
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<EngineLimits.couponCodeDrawsMax {
                let code = CouponCode(slot: slot, high: generator.next(), low: generator.next())
                let recorded = shard.claimCoupon(batch: batch, user: user, clientIP: clientIP, code: code, nowMs: nowMs)
                if case .codeTaken = recorded.result { continue }
                return recorded
            }
            return nil
        }) { recorded in
            guard let recorded else { return answer(.failure(.unavailable("could not draw an unused coupon code"))) }
            switch recorded.result {
            case .claimed(let coupon):
                self.whenDurable(recorded.ticket, on: here) { failure in
                    if let failure { return answer(.failure(failure)) }
                    self.stats.couponsClaimed.increment()
                    answer(.success(coupon))
                }
            case .codeTaken: preconditionFailure("a taken code is drawn again")
            case .unknownBatch: answer(.failure(.unknownBatch))
            case .notStarted(let startsAtMs): answer(.failure(.notStarted(startsAtMs: startsAtMs)))
            case .ended: answer(.failure(.ended))
            case .exhausted: answer(.failure(.exhausted))
            case .limitExceeded: answer(.failure(.limitExceeded))
            case .ipLimitExceeded: answer(.failure(.ipLimitExceeded))
            }
        }
    }

    /// A seckill order redeeming coupon `text`, after the event checks of `placeOrder`, on
    /// loop `here`; `answer` runs there once the order is durable or refused.
    ///
    /// Holding the coupon and reserving the stock are one decision: hold on the coupon's
    /// shard, reserve on the SKU's, and give the hold back if the reservation is refused.
    /// Errors keep the contract's order (limit_exceeded, coupon_invalid, sold_out): an invalid
    /// coupon is answered limit_exceeded if the limit would be passed too; a valid one lets
    /// the SKU's shard answer limit_exceeded or sold_out.
    func placeOrder(
        _ checked: CheckedOrder, coupon text: String, here: Int, onReserved: (@Sendable (Order) -> JournalRecord?)?,
        answer: @escaping (Result<Order, Rejection>) -> Void
    ) {
        let key = checked.reserve.key, user = checked.reserve.user, qty = checked.reserve.qty, nowMs = checked.reserve.nowMs
        let keyShard = inventory.shard(for: key)
        let priceFen = checked.item.priceFen * Int64(qty)
        let refuseInvalid = { (reason: CouponInvalidReason) in
            self.onShard(keyShard, from: here, { $0.wouldExceedLimit(key, user: user, qty: qty) }) { exceeds in
                answer(.failure(exceeds ? .limitExceeded : .couponInvalid(reason.rawValue)))
            }
        }
        guard let code = CouponCode(text) else { return refuseInvalid(.notYours) }
        let couponShard = inventory.shard(for: code)
        onShard(couponShard, from: here, { $0.holdCoupon(code, user: user, spendFen: priceFen, nowMs: nowMs) }) { hold in
            let token: UInt64, valueFen: Int64
            switch hold {
            case .held(let held, let value): (token, valueFen) = (held, value)
            case .invalid(let reason): return refuseInvalid(reason)
            }
            let discountFen = min(valueFen, priceFen)
            let reserve = {
                var reserve = checked.reserve
                reserve.amountFen = max(0, priceFen - discountFen)
                reserve.discountFen = discountFen
                reserve.coupon = code.description
                return reserve
            }()
            let attach = Self.attachment(onReserved)
            self.onShard(keyShard, from: here, { $0.reserve(reserve, attach: attach) }) { recorded in
                guard case .reserved(let order) = recorded.result else {
                    self.onShard(couponShard, from: here, { $0.releaseCouponHold(code, token: token) }) {
                        answer(.failure(self.refusal(recorded.result, event: checked.event)))
                    }
                    return
                }
                // Bound before anyone can know the order id, so its payment or cancel finds it bound.
                self.onShard(couponShard, from: here, { $0.bindCoupon(code, token: token, order: order.id) }) {
                    self.whenDurable(recorded.ticket, on: here) { failure in
                        if let failure { return answer(.failure(failure)) }
                        self.stats.ordersCreated.increment()
                        answer(.success(order))
                    }
                }
            }
        }
    }

    /// `order` expired or was canceled: its coupon, if any, goes back to its owner (the sweep).
    func releaseCoupon(of order: Order) async {
        guard order.coupon != nil else { return }
        await onALoop { loop, done in self.releaseCoupon(of: order, from: self.ownLoop(loop), then: { done(()) }) }
    }

    /// `order` expired or was canceled: its coupon, if any, goes back to its owner; then
    /// `then` on loop `here`.
    func releaseCoupon(of order: Order, from here: Int, then: @escaping () -> Void) {
        guard let text = order.coupon, let code = CouponCode(text) else { return then() }
        onShard(inventory.shard(for: code), from: here, { $0.releaseCoupon(code, order: order.id) }, then: then)
    }

    /// After a payment: a paid coupon order spends its coupon; one refunded instead (it had
    /// expired at payment time) gives it back. Then `then` on loop `here`.
    func settleCoupon(after result: PaymentResult, from here: Int, then: @escaping () -> Void) {
        switch result {
        case .paid(let order), .latePaid(let order):
            guard let text = order.coupon, let code = CouponCode(text) else { return then() }
            onShard(inventory.shard(for: code), from: here, { $0.spendCoupon(code, order: order.id) }, then: then)
        case .lateRefund(let order):
            releaseCoupon(of: order, from: here, then: then)
        case .unknownOrder, .retired, .amountMismatch, .duplicate, .doublePayment, .refundRepeated:
            then()
        }
    }

    /// Coupon `text` as it stands (tests, ops).
    public func coupon(_ text: String) async -> Coupon? {
        guard let code = CouponCode(text) else { return nil }
        return await inventory.shard(for: code).coupon(code)
    }

    /// Creates the configured batches and loads claimed coupons, each in the state the orders
    /// naming it give it; traps if two live orders name one coupon (spent twice).
    func restoreCoupons(_ coupons: [Coupon], orders: [Order], spent: [SpentCoupon] = [], retiredBatches: [(batch: String, issued: Int64)] = []) async {
        var byShard = [[CouponBatchRules]](repeating: [], count: inventory.shards.count)
        for batch in couponBatches.withLock({ Array($0.values) }) {
            byShard[CouponCode.slot(batch: batch.id) % byShard.count].append(batch)
        }
        for (index, shard) in inventory.shards.enumerated() where !byShard[index].isEmpty {
            await shard.addCouponBatches(byShard[index])
        }
        var states: [CouponCode: CouponState] = [:]
        // Spent by orders of retired events: spent for good.
        for coupon in spent {
            guard let code = CouponCode(coupon.code) else { continue }
            states[code] = .spent(coupon.order)
        }
        for order in orders {
            guard let text = order.coupon, let code = CouponCode(text) else { continue }
            let state: CouponState
            switch order.status {
            case .pending: state = .held(order: order.id, token: 0)
            case .paid, .formed: state = .spent(order.id)
            case .expired, .canceled, .refundPending: continue
            }
            precondition(states[code] == nil, "coupon \(code) is used by two orders: \(String(describing: states[code])) and \(order.id)")
            states[code] = state
        }
        var couponsByShard = [[Coupon]](repeating: [], count: inventory.shards.count)
        for var coupon in coupons {
            coupon.state = states.removeValue(forKey: coupon.code) ?? .available
            couponsByShard[coupon.code.slot % couponsByShard.count].append(coupon)
        }
        // Coupons of retired batches are not loaded: an order or a spent record may name one.
        precondition(states.isEmpty || !retiredBatches.isEmpty, "orders name coupons never claimed: \(states.keys.map(\.description))")
        for (batch, issued) in retiredBatches {
            await inventory.shard(forBatch: batch)
                .restoreRetiredCouponBatch(batch, issued: issued)
        }
        for (index, shard) in inventory.shards.enumerated() where !couponsByShard[index].isEmpty {
            for (batch, issued, total) in await shard.restore(coupons: couponsByShard[index]) {
                logger.warning("coupon batch holds more coupons than its total now allows; no more claims", metadata: ["batch": "\(batch)", "issued": "\(issued)", "total": "\(total)"])
            }
        }
    }
}
