/// The sharded stock: routes a ledger key or an order id to the one shard that owns it.
public struct Inventory: Sendable {
    /// The shards; a slot `s` lives in `shards[s % shards.count]`.
    public let shards: [InventoryShard]

    /// Per-ledger sold-out flags the shards publish (the fast `sold_out` path); nil: none.
    public let soldOutHints: SoldOutHints?

    /// `shardCount` empty shards reporting to `sink`, publishing sold-out flags to
    /// `soldOutHints`, checking sale windows against `now`; shard `i` runs on
    /// `executors[i % executors.count]` (the daemon's event loops), or each on its own pooled
    /// executor when `executors` is empty.
    public init(
        shardCount: Int, sink: any ChangeSink, soldOutHints: SoldOutHints? = nil, now: @escaping @Sendable () -> Int64 = { 0 },
        executors: [any SerialExecutor] = []
    ) {
        precondition(shardCount >= 1 && shardCount <= OrderID.slotCount, "shard count out of range")
        self.soldOutHints = soldOutHints
        self.shards = (0..<shardCount).map { index in
            InventoryShard(
                index: index, sink: sink, hints: soldOutHints, now: now,
                executor: executors.isEmpty ? nil : executors[index % executors.count])
        }
    }

    /// Sets every event's sale window on every shard.
    public func setSaleWindows(_ windows: [String: Range<Int64>]) async {
        for shard in shards { await shard.setSaleWindows(windows) }
    }

    /// Changes an event's sale window on every shard, and its SKUs' per-buyer limits on their shards.
    public func edit(event: String, window: Range<Int64>, limits: [(LedgerKey, Int32)]) async {
        for shard in shards { await shard.setSaleWindow(event, window) }
        for (key, limit) in limits { await shard(for: key).setLimitPerUser(key, limit) }
    }

    /// Adds the sale windows of events added while running, on every shard.
    public func addSaleWindows(_ windows: [String: Range<Int64>]) async {
        for shard in shards { await shard.addSaleWindows(windows) }
    }

    /// The shard owning `key`'s stock.
    public func shard(for key: LedgerKey) -> InventoryShard { shards[key.slot % shards.count] }

    /// The shard owning order `id`.
    public func shard(for id: OrderID) -> InventoryShard { shards[id.slot % shards.count] }

    /// Adds ledgers, each to its shard.
    public func addLedgers(_ ledgers: [(key: LedgerKey, total: Int64, limitPerUser: Int32)]) async {
        var byShard = [[(key: LedgerKey, total: Int64, limitPerUser: Int32)]](repeating: [], count: shards.count)
        for ledger in ledgers { byShard[ledger.key.slot % shards.count].append(ledger) }
        for (index, ledgers) in byShard.enumerated() where !ledgers.isEmpty {
            await shards[index].addLedgers(ledgers)
        }
    }

    /// Reserves stock for a new pending order on the owning shard.
    public func reserve(_ request: ReserveRequest, attach: (@Sendable (Order) -> (any Sendable)?)? = nil) async -> Recorded<ReserveResult> {
        await shard(for: request.key).reserve(request, attach: attach)
    }

    /// Applies a verified payment notification on the owning shard.
    public func pay(_ id: OrderID, transaction: String, amountFen: Int64, nowMs: Int64) async -> Recorded<PaymentResult> {
        await shard(for: id).pay(id, transaction: transaction, amountFen: amountFen, nowMs: nowMs)
    }

    /// Cancels a buyer's pending order on the owning shard.
    public func cancel(_ id: OrderID, user: String, nowMs: Int64) async -> Recorded<CancelResult> {
        await shard(for: id).cancel(id, user: user, nowMs: nowMs)
    }

    /// One order as it stands.
    public func order(_ id: OrderID) async -> Order? { await shard(for: id).order(id) }

    /// One order as it stands, or whether its event has retired.
    public func lookup(_ id: OrderID) async -> OrderLookup { await shard(for: id).lookup(id) }

    /// Takes `event` out of every shard, or, if any shard still holds something of it that can
    /// move (a pending order, an open group), out of none: every shard is checked first, in
    /// one step each. Nothing else may change the event meanwhile (it has ended, and the
    /// engine refuses edits of a retiring event); a late payment may, but never makes an order
    /// pending or a group open.
    public func retire(event: String) async -> Result<RetiredPart, RetireRefusal> {
        for shard in shards {
            if let refusal = await shard.retireRefusal(event: event) { return .failure(refusal) }
        }
        var part = RetiredPart(event: event)
        for shard in shards {
            switch await shard.retire(event: event) {
            case .success(let taken): part.merge(taken)
            case .failure(let refusal):
                // Every shard passed the check above, and nothing can make an order pending or
                // a group open in an ended event: a refusal now is a bug, not a state.
                preconditionFailure("event \(event) passed the retirement check, then refused: \(refusal)")
            }
        }
        return .success(part)
    }

    /// Gives out no id at or below the retired floors again, each on its shard (recovery, before any load).
    public func raiseFloors(_ floors: [SequenceFloor]) async {
        var byShard = [[SequenceFloor]](repeating: [], count: shards.count)
        for floor in floors { byShard[floor.slot % shards.count].append(floor) }
        for (index, floors) in byShard.enumerated() where !floors.isEmpty { await shards[index].raiseFloors(floors) }
    }

    /// One ledger's counters.
    public func counters(_ key: LedgerKey) async -> StockCounters? { await shard(for: key).counters(key) }

    /// Users holding units of a ledger now (its per-user table's size; nil: unknown ledger).
    public func holderCount(_ key: LedgerKey) async -> Int? { await shard(for: key).holderCount(key) }

    /// Changes a ledger's stock on the owning shard.
    public func restock(
        _ key: LedgerKey, delta: Int64, attach: (@Sendable (RestockResult) -> (any Sendable)?)? = nil
    ) async -> Recorded<RestockResult> {
        await shard(for: key).restock(key, delta: delta, attach: attach)
    }

    /// Expires due orders on every shard; returns how many expired.
    public func expireDue(nowMs: Int64, limitPerShard: Int = 10_000) async -> [Order] {
        var expired: [Order] = []
        for shard in shards { expired += await shard.expireDue(nowMs: nowMs, limit: limitPerShard) }
        return expired
    }

    /// Pauses or resumes `event` on every shard; returns once every shard has applied it.
    public func setPaused(_ event: String, _ paused: Bool) async {
        for shard in shards { await shard.setPaused(event, paused) }
    }

    /// Empties every shard (see `InventoryShard.reset`).
    public func reset() async {
        for shard in shards { await shard.reset() }
    }

    /// Reports every later change on every shard to `observer`.
    public func setObserver(_ observer: (any StockObserver)?) async {
        for shard in shards { await shard.setObserver(observer) }
    }

    /// Loads each shard's orders and restocks (recovery), all shards at once; returns the
    /// total growth forced by a configuration that now offers less than was held.
    public func restore(ordersByShard: [[Order]], restocksByShard: [[(LedgerKey, Int64)]]) async -> Int64 {
        precondition(ordersByShard.count == shards.count && restocksByShard.count == shards.count, "one list per shard")
        return await withTaskGroup(of: Int64.self) { group in
            for (index, shard) in shards.enumerated() {
                let orders = ordersByShard[index], restocks = restocksByShard[index]
                group.addTask { await shard.restore(orders: orders, restocks: restocks) }
            }
            return await group.reduce(0, +)
        }
    }

    /// Traps unless every shard's ledgers match their orders (all shards at once: O(orders)).
    public func verifyInvariants() async {
        await withDiscardingTaskGroup { group in
            for shard in shards { group.addTask { await shard.verifyInvariants() } }
        }
    }
}
