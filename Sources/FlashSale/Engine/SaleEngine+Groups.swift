import InventoryActor

/// A buyer's place in a group: the group as it stands and the buyer's member order.
public struct GroupMembership: Sendable {
    /// The group with its member counts after the join.
    public var view: GroupView
    /// The member's pending order (one unit at the group price).
    public var order: Order
}

/// Group-buy (contract §3.5): the engine checks the event, the shard owning the group's SKU
/// decides, the journal makes it durable, then the buyer is answered.
extension SaleEngine {
    /// Opens a group on `sku` of group-buy `event`, led by `user`, who holds one unit.
    public func openGroup(user: String, event eventID: String, sku: String) async -> Result<GroupMembership, Rejection> {
        guard let event = catalog.event(eventID) else { return .failure(.unknownEvent) }
        guard let item = event.itemsBySKU[sku] else { return .failure(.unknownSKU) }
        guard event.config.kind == .groupbuy, let size = item.groupSize, let priceFen = item.groupPriceFen else {
            return .failure(.badRequest("\(sku) in \(eventID) is not sold in groups"))
        }
        let nowMs = clock.nowMs()
        if let refusal = saleStateRefusal(event, nowMs: nowMs) { return .failure(refusal) }
        if let journal, !journal.acceptsWrites { return .failure(.unavailable(journal.refusalReason)) }
        let key = LedgerKey(event: event.config.id, sku: item.sku)
        let request = OpenGroupRequest(
            key: key, user: user, size: Int32(size), priceFen: priceFen, nowMs: nowMs,
            paymentDeadlineMs: nowMs + paymentWindowMs, groupDeadlineMs: nowMs + groupWindowMs)
        return await membership(inventory.shard(for: key).openGroup(request), event: event)
    }

    /// Adds `user` to group `text` (`g<hex>`), holding one unit for them.
    public func joinGroup(_ text: String, user: String) async -> Result<GroupMembership, Rejection> {
        guard let id = GroupID(text), let found = await inventory.shard(for: id).group(id) else { return .failure(.unknownGroup) }
        // A group of an event no longer configured cannot take members.
        guard let event = catalog.event(found.group.key.event) else { return .failure(.groupClosed) }
        let nowMs = clock.nowMs()
        if let refusal = saleStateRefusal(event, nowMs: nowMs) { return .failure(refusal) }
        if let journal, !journal.acceptsWrites { return .failure(.unavailable(journal.refusalReason)) }
        return await membership(
            inventory.shard(for: id).joinGroup(id, user: user, nowMs: nowMs, paymentDeadlineMs: nowMs + paymentWindowMs), event: event)
    }

    /// Group `text` with its member counts; nil when unknown.
    public func group(_ text: String) async -> GroupView? {
        guard let id = GroupID(text) else { return nil }
        return await inventory.shard(for: id).group(id)
    }

    /// Groups formed in `event` (the "N groups formed" figure).
    public func groupsFormed(_ event: EventCatalog.Event) async -> Int {
        await inventory.groupsFormed(
            event: event.config.id, keys: event.config.items.map { LedgerKey(event: event.config.id, sku: $0.sku) })
    }

    /// Groups formed in every event (ops `STATS groups_formed`).
    public func groupsFormedTotal() async -> Int { await inventory.groupsFormedTotal() }

    /// The refusal for claims on `event` at `nowMs` (not started, ended, paused); nil when live.
    func saleStateRefusal(_ event: EventCatalog.Event, nowMs: Int64) -> Rejection? {
        switch catalog.state(of: event, nowMs: nowMs) {
        case .scheduled: .notStarted(startsAtMs: event.config.startsAtMs)
        case .ended: .ended
        case .paused: .paused
        case .live: nil
        }
    }

    /// Loads groups from storage into their shards (recovery, before the orders).
    func restoreGroups(_ groups: [Group]) async {
        var byShard = [[Group]](repeating: [], count: inventory.shards.count)
        for group in groups { byShard[group.id.slot % byShard.count].append(group) }
        for (index, shard) in inventory.shards.enumerated() where !byShard[index].isEmpty {
            await shard.restore(groups: byShard[index])
        }
    }

    private func membership(_ recorded: Recorded<GroupJoinResult>, event: EventCatalog.Event) async -> Result<GroupMembership, Rejection> {
        // Wait even for a refusal: the join may have failed an overdue group or expired members.
        if let failure = await durable(recorded.ticket) { return .failure(failure) }
        switch recorded.result {
        case .joined(let view, let order):
            stats.ordersCreated.increment()
            return .success(GroupMembership(view: view, order: order))
        case .unknownGroup: return .failure(.unknownGroup)
        case .unknownSKU: return .failure(.unknownSKU)
        case .groupClosed: return .failure(.groupClosed)
        case .alreadyMember: return .failure(.alreadyMember)
        case .groupFull: return .failure(.groupFull)
        case .limitExceeded: return .failure(.limitExceeded)
        case .saleClosed(let closed): return .failure(Self.rejection(closed, event: event))
        case .soldOut:
            stats.rejectedSoldOut.increment()
            return .failure(.soldOut)
        }
    }
}
