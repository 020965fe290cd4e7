/// Told, inside the owning shard, of every recorded change to a ledger and the counters it left.
///
/// Called synchronously in the shard's actor, in decision order, right after the change is
/// handed to the `ChangeSink`: it must not block, await or call back into the shard. Buffer
/// and wake someone else (ops `WATCH`, metrics). Counters may be unchanged (a late payment
/// that ends `refund_pending` moves no stock); observers that only care about stock compare.
public protocol StockObserver: Sendable {
    /// `key`'s counters right after `change` was decided.
    func stockChanged(_ key: LedgerKey, _ counters: StockCounters, by change: InventoryChange)
}
