/// Routing of groups (by the slot in their id) and coupons (by the slot of their batch).
extension Inventory {
    /// The shard owning group `id`.
    public func shard(for id: GroupID) -> InventoryShard { shards[id.slot % shards.count] }

    /// The shard owning coupon `code` (its batch's shard).
    public func shard(for code: CouponCode) -> InventoryShard { shards[code.slot % shards.count] }

    /// The shard owning coupon batch `batch`.
    public func shard(forBatch batch: String) -> InventoryShard { shards[CouponCode.slot(batch: batch) % shards.count] }

    /// Fails due groups on every shard; returns them.
    @discardableResult
    public func failDueGroups(nowMs: Int64, limitPerShard: Int = 10_000) async -> [Group] {
        var failed: [Group] = []
        for shard in shards { failed += await shard.failDueGroups(nowMs: nowMs, limit: limitPerShard) }
        return failed
    }

    /// Groups formed in `event`, summed over the shards that own `keys` (the event's ledgers).
    public func groupsFormed(event: String, keys: [LedgerKey]) async -> Int {
        var indices = Set<Int>()
        for key in keys { indices.insert(key.slot % shards.count) }
        var formed = 0
        for index in indices.sorted() { formed += await shards[index].groupsFormedByEvent()[event, default: 0] }
        return formed
    }

    /// Groups formed in every event, summed over every shard.
    public func groupsFormedTotal() async -> Int {
        var formed = 0
        for shard in shards { formed += await shard.groupsFormedByEvent().values.reduce(0, +) }
        return formed
    }

    /// Traps unless every shard's coupon counts match its coupons.
    public func verifyCouponInvariants() async {
        for shard in shards { await shard.verifyCouponInvariants() }
    }
}
