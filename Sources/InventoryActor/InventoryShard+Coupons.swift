/// Coupon batches on the shard their id's slot maps to: every claim of a batch, and every hold,
/// bind, release and spend of its coupons, is decided here one at a time.
extension InventoryShard {
    /// Adds batches (configuration); existing ones keep their counts.
    public func addCouponBatches(_ batches: [CouponBatchRules]) {
        for rules in batches { coupons.addBatch(rules) }
    }

    /// Claims a coupon; a new coupon is recorded.
    public func claimCoupon(batch: String, user: String, clientIP: String, code: CouponCode, nowMs: Int64) -> Recorded<CouponClaimResult> {
        let result = coupons.claim(batch: batch, user: user, clientIP: clientIP, code: code, nowMs: nowMs)
        if case .claimed(let coupon) = result {
            return Recorded(result: result, ticket: record(.coupon(coupon)))
        }
        return Recorded(result: result, ticket: 0)
    }

    /// Holds a coupon for an order being created. In memory only: the order that binds it is
    /// what is recorded, and recovery rebuilds the hold from it.
    public func holdCoupon(_ code: CouponCode, user: String, spendFen: Int64, nowMs: Int64) -> CouponHoldResult {
        coupons.hold(code, user: user, spendFen: spendFen, nowMs: nowMs)
    }

    /// Binds a hold to the order created with it.
    public func bindCoupon(_ code: CouponCode, token: UInt64, order: OrderID) {
        coupons.bind(code, token: token, order: order)
    }

    /// Gives back a hold whose order was never created.
    public func releaseCouponHold(_ code: CouponCode, token: UInt64) {
        coupons.releaseHold(code, token: token)
    }

    /// The coupon's order expired or was canceled: back to its owner.
    public func releaseCoupon(_ code: CouponCode, order: OrderID) {
        coupons.release(code, order: order)
    }

    /// The coupon's order was paid: spent.
    public func spendCoupon(_ code: CouponCode, order: OrderID) {
        coupons.spend(code, order: order)
    }

    /// One coupon.
    public func coupon(_ code: CouponCode) -> Coupon? { coupons.coupon(code) }

    /// Takes the coupons of `batch` out of memory (see `CouponBook.retire(batch:)`).
    public func retireCouponBatch(_ batch: String) -> Int? { coupons.retire(batch: batch) }

    /// Marks `batch` retired with `issued` coupons (recovery).
    public func restoreRetiredCouponBatch(_ batch: String, issued: Int64) { coupons.restoreRetired(batch: batch, issued: issued) }

    /// Coupons issued from `batch` (nil: not on this shard).
    public func couponsIssued(_ batch: String) -> Int64? { coupons.issued(batch) }

    /// Loads coupons from storage in the states their orders give them; returns batches over
    /// their total. Nothing is recorded.
    public func restore(coupons restored: [Coupon]) -> [(String, Int64, Int64)] {
        for coupon in restored { coupons.restore(coupon) }
        coupons.verifyInvariants()
        return coupons.batchesOverTotal
    }

    /// Traps unless the coupon counts match the coupons.
    public func verifyCouponInvariants() { coupons.verifyInvariants() }
}
