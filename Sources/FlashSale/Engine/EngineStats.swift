import Synchronization

/// Process-lifetime counters of what the engine decided (ops `STATS`, metrics).
public final class EngineStats: Sendable {
    /// Orders created (acknowledged).
    public let ordersCreated = Atomic<Int>(0)
    /// Orders paid (on time or late).
    public let ordersPaid = Atomic<Int>(0)
    /// Orders expired unpaid.
    public let ordersExpired = Atomic<Int>(0)
    /// Orders canceled by their buyers.
    public let ordersCanceled = Atomic<Int>(0)
    /// Claims refused as sold out.
    public let rejectedSoldOut = Atomic<Int>(0)
    /// Requests refused by the per-IP rate limit.
    public let rejectedRateLimited = Atomic<Int>(0)
    /// Payments that arrived after expiry or cancel.
    public let latePayments = Atomic<Int>(0)
    /// Payments by a second transaction of an already-paid order.
    public let doublePayments = Atomic<Int>(0)
    /// Coupons claimed (acknowledged).
    public let couponsClaimed = Atomic<Int>(0)

    /// All zero.
    public init() {}

    /// Name and value of every counter, for `STATS`.
    public var snapshot: [(String, Int)] {
        [
            ("orders_created", ordersCreated.load(ordering: .relaxed)),
            ("orders_paid", ordersPaid.load(ordering: .relaxed)),
            ("orders_expired", ordersExpired.load(ordering: .relaxed)),
            ("orders_canceled", ordersCanceled.load(ordering: .relaxed)),
            ("rejected_sold_out", rejectedSoldOut.load(ordering: .relaxed)),
            ("rejected_rate_limited", rejectedRateLimited.load(ordering: .relaxed)),
            ("late_payments", latePayments.load(ordering: .relaxed)),
            ("double_payments", doublePayments.load(ordering: .relaxed)),
            ("coupons_claimed", couponsClaimed.load(ordering: .relaxed)),
        ]
    }
}

extension Atomic where Value == Int {
    /// Adds one (relaxed: these are statistics, not synchronization).
    func increment() { add(1, ordering: .relaxed) }
}
