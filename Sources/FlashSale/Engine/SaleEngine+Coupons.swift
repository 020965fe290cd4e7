import FlashSaleJournal
import InventoryActor

/// Coupons (contract §3.6): claims decided by the shard owning the batch; redemption as
/// hold-then-reserve across the coupon's shard and the SKU's shard, with compensation.
///
/// A coupon's hold, spend and release are never journaled by themselves: the order naming the
/// coupon is, and recovery derives the coupon's state from it (pending → held, paid → spent).
/// So only final outcomes reach the journal, and a crash between hold and reserve loses
/// nothing that was acknowledged.
extension SaleEngine {

    /// Claims a coupon of `batch` for `user`, counted against `clientIP` for `per_ip`.
    public func claimCoupon(batch: String, user: String, clientIP: String) async -> Result<Coupon, Rejection> {
        guard couponBatches[batch] != nil else { return .failure(.unknownBatch) }
        if let journal, !journal.acceptsWrites { return .failure(.unavailable(journal.refusalReason)) }
        let shard = inventory.shard(forBatch: batch)
        let slot = CouponCode.slot(batch: batch)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<EngineLimits.couponCodeDrawsMax {
            let code = CouponCode(slot: slot, high: generator.next(), low: generator.next())
            let recorded = await shard.claimCoupon(batch: batch, user: user, clientIP: clientIP, code: code, nowMs: clock.nowMs())
            switch recorded.result {
            case .claimed(let coupon):
                if let failure = await durable(recorded.ticket) { return .failure(failure) }
                stats.couponsClaimed.increment()
                return .success(coupon)
            case .codeTaken: continue
            case .unknownBatch: return .failure(.unknownBatch)
            case .notStarted(let startsAtMs): return .failure(.notStarted(startsAtMs: startsAtMs))
            case .ended: return .failure(.ended)
            case .exhausted: return .failure(.exhausted)
            case .limitExceeded: return .failure(.limitExceeded)
            case .ipLimitExceeded: return .failure(.ipLimitExceeded)
            }
        }
        return .failure(.unavailable("could not draw an unused coupon code"))
    }

    /// A seckill order redeeming coupon `text`, after the event checks of `placeOrder`.
    ///
    /// Holding the coupon and reserving the stock are one decision: hold on the coupon's
    /// shard, reserve on the SKU's, and give the hold back if the reservation is refused.
    /// Errors keep the contract's order (limit_exceeded, coupon_invalid, sold_out): an invalid
    /// coupon is answered limit_exceeded if the limit would be passed too; a valid one lets
    /// the SKU's shard answer limit_exceeded or sold_out.
    func placeOrder(
        _ request: PlaceOrderRequest, item: ItemConfig, event: EventCatalog.Event, qty: Int32, coupon text: String, nowMs: Int64,
        onReserved: (@Sendable (Order) -> JournalRecord?)?
    ) async -> Result<Order, Rejection> {
        let key = LedgerKey(event: event.config.id, sku: item.sku)
        let priceFen = item.priceFen * Int64(qty)
        let code = CouponCode(text)
        let hold: CouponHoldResult =
            if let code {
                await inventory.shard(for: code).holdCoupon(code, user: request.user, spendFen: priceFen, nowMs: nowMs)
            } else {
                .invalid(.notYours)
            }
        guard let code, case .held(let token, let valueFen) = hold else {
            if await inventory.shard(for: key).wouldExceedLimit(key, user: request.user, qty: qty) {
                return .failure(.limitExceeded)
            }
            guard case .invalid(let reason) = hold else { preconditionFailure("a hold without a code") }
            return .failure(.couponInvalid(reason.rawValue))
        }
        let couponShard = inventory.shard(for: code)
        let discountFen = min(valueFen, priceFen)
        let reserve = ReserveRequest(
            key: key, user: request.user, qty: qty, amountFen: max(0, priceFen - discountFen), discountFen: discountFen,
            nowMs: nowMs, expiresAtMs: nowMs + paymentWindowMs, coupon: code.description)
        let recorded = await inventory.reserve(reserve, attach: Self.attachment(onReserved))
        guard case .reserved(let order) = recorded.result else {
            await couponShard.releaseCouponHold(code, token: token)
            switch recorded.result {
            case .reserved: preconditionFailure("unreachable")
            case .unknownSKU: return .failure(.unknownSKU)
            case .limitExceeded: return .failure(.limitExceeded)
            case .saleClosed(let closed): return .failure(Self.rejection(closed, event: event))
            case .soldOut:
                stats.rejectedSoldOut.increment()
                return .failure(.soldOut)
            }
        }
        // Bound before anyone can know the order id, so its payment or cancel finds it bound.
        await couponShard.bindCoupon(code, token: token, order: order.id)
        if let failure = await durable(recorded.ticket) { return .failure(failure) }
        stats.ordersCreated.increment()
        return .success(order)
    }

    /// `order` expired or was canceled: its coupon, if any, goes back to its owner.
    func releaseCoupon(of order: Order) async {
        guard let text = order.coupon, let code = CouponCode(text) else { return }
        await inventory.shard(for: code).releaseCoupon(code, order: order.id)
    }

    /// After a payment: a paid coupon order spends its coupon; one refunded instead (it had
    /// expired at payment time) gives it back.
    func settleCoupon(after result: PaymentResult) async {
        switch result {
        case .paid(let order), .latePaid(let order):
            guard let text = order.coupon, let code = CouponCode(text) else { return }
            await inventory.shard(for: code).spendCoupon(code, order: order.id)
        case .lateRefund(let order):
            await releaseCoupon(of: order)
        case .unknownOrder, .amountMismatch, .duplicate, .doublePayment, .refundRepeated:
            break
        }
    }

    /// Coupon `text` as it stands (tests, ops).
    public func coupon(_ text: String) async -> Coupon? {
        guard let code = CouponCode(text) else { return nil }
        return await inventory.shard(for: code).coupon(code)
    }

    /// Creates the configured batches and loads claimed coupons, each in the state the orders
    /// naming it give it; traps if two live orders name one coupon (spent twice).
    func restoreCoupons(_ coupons: [Coupon], orders: [Order]) async {
        var byShard = [[CouponBatchRules]](repeating: [], count: inventory.shards.count)
        for batch in couponBatches.values {
            byShard[CouponCode.slot(batch: batch.id) % byShard.count].append(batch)
        }
        for (index, shard) in inventory.shards.enumerated() where !byShard[index].isEmpty {
            await shard.addCouponBatches(byShard[index])
        }
        var states: [CouponCode: CouponState] = [:]
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
        precondition(states.isEmpty, "orders name coupons never claimed: \(states.keys.map(\.description))")
        for (index, shard) in inventory.shards.enumerated() where !couponsByShard[index].isEmpty {
            for (batch, issued, total) in await shard.restore(coupons: couponsByShard[index]) {
                logger.warning("coupon batch holds more coupons than its total now allows; no more claims", metadata: ["batch": "\(batch)", "issued": "\(issued)", "total": "\(total)"])
            }
        }
    }
}
