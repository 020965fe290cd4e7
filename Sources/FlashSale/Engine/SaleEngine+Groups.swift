import InventoryActor
import NIOCore

/// A buyer's place in a group: the group as it stands and the buyer's member order.
public struct GroupMembership: Sendable {
    /// The group with its member counts after the join.
    public var view: GroupView
    /// The member's pending order (one unit at the group price).
    public var order: Order
}

/// Group-buy (§3.5): the engine checks the event, the shard owning the group's SKU
/// decides, the journal makes it durable, then the buyer is answered.
extension SaleEngine {
    /// Opens a group (`openGroup(user:event:sku:on:answer:)`, run on one of the loops).
    public func openGroup(user: String, event eventID: String, sku: String) async -> Result<GroupMembership, Rejection> {
        await onALoop { loop, answer in self.openGroup(user: user, event: eventID, sku: sku, on: loop, answer: answer) }
    }

    /// Opens a group on `sku` of group-buy `event`, led by `user`, who holds one unit; on
    /// `loop` (one of the engine's), answered there once durable.
    public func openGroup(
        user: String, event eventID: String, sku: String, on loop: any EventLoop,
        answer: @escaping (Result<GroupMembership, Rejection>) -> Void
    ) {
        let here = ownLoop(loop)
        guard let event = catalog.event(eventID) else { return answer(.failure(.unknownEvent)) }
        guard let item = event.itemsBySKU[sku] else { return answer(.failure(.unknownSKU)) }
        guard event.config.kind == .groupbuy, let size = item.groupSize, let priceFen = item.groupPriceFen else {
            return answer(.failure(.badRequest("\(sku) in \(eventID) is not sold in groups")))
        }
        let nowMs = clock.nowMs()
        if let refusal = saleStateRefusal(event, nowMs: nowMs) { return answer(.failure(refusal)) }
        if let journal, !journal.acceptsWrites { return answer(.failure(.unavailable(journal.refusalReason))) }
        let key = LedgerKey(event: event.config.id, sku: item.sku)
        let request = OpenGroupRequest(
            key: key, user: user, size: Int32(size), priceFen: priceFen, nowMs: nowMs,
            paymentDeadlineMs: nowMs + paymentWindowMs, groupDeadlineMs: nowMs + groupWindowMs)
        onShard(inventory.shard(for: key), from: here, { $0.openGroup(request) }) { recorded in
            self.membership(recorded, event: event, here: here, answer: answer)
        }
    }

    /// Adds `user` to a group (`joinGroup(_:user:on:answer:)`, run on one of the loops).
    public func joinGroup(_ text: String, user: String) async -> Result<GroupMembership, Rejection> {
        await onALoop { loop, answer in self.joinGroup(text, user: user, on: loop, answer: answer) }
    }

    /// Adds `user` to group `text` (`g<hex>`), holding one unit for them; on `loop` (one of
    /// the engine's), answered there once durable.
    public func joinGroup(
        _ text: String, user: String, on loop: any EventLoop, answer: @escaping (Result<GroupMembership, Rejection>) -> Void
    ) {
        let here = ownLoop(loop)
        guard let id = GroupID(text) else { return answer(.failure(.unknownGroup)) }
        let shard = inventory.shard(for: id)
        onShard(shard, from: here, { ($0.group(id), $0.wasRetired(id)) }) { found, retired in
            // A retired group is formed or failed: closed.
            guard let found else { return answer(.failure(retired ? .groupClosed : .unknownGroup)) }
            // A group of an event no longer configured cannot take members.
            guard let event = self.catalog.event(found.group.key.event) else { return answer(.failure(.groupClosed)) }
            let nowMs = self.clock.nowMs()
            if let refusal = self.saleStateRefusal(event, nowMs: nowMs) { return answer(.failure(refusal)) }
            if let journal = self.journal, !journal.acceptsWrites { return answer(.failure(.unavailable(journal.refusalReason))) }
            let paymentDeadlineMs = nowMs + self.paymentWindowMs
            self.onShard(shard, from: here, { $0.joinGroup(id, user: user, nowMs: nowMs, paymentDeadlineMs: paymentDeadlineMs) }) { recorded in
                self.membership(recorded, event: event, here: here, answer: answer)
            }
        }
    }

    /// Group `text` with its member counts (nil: unknown). A group of a retired event is read
    /// from storage: `unavailable` when storage cannot answer now.
    public func findGroup(_ text: String) async -> Result<GroupView?, Rejection> {
        guard let id = GroupID(text) else { return .success(nil) }
        let shard = inventory.shard(for: id)
        if let view = await shard.group(id) { return .success(view) }
        return await shard.wasRetired(id) ? await storedGroup(id) : .success(nil)
    }

    /// Groups formed in `event` (the "N groups formed" figure).
    public func groupsFormed(_ event: EventCatalog.Event) async -> Int {
        if let retired = retiredEvent(event.config.id) { return retired.groupsFormed }
        return await inventory.groupsFormed(
            event: event.config.id, keys: event.config.items.map { LedgerKey(event: event.config.id, sku: $0.sku) })
    }

    /// Groups formed in every event (ops `STATS groups_formed`).
    public func groupsFormedTotal() async -> Int {
        await inventory.groupsFormedTotal() + retirement.withLock { $0.groupsFormed }
    }

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

    private func membership(
        _ recorded: Recorded<GroupJoinResult>, event: EventCatalog.Event, here: Int,
        answer: @escaping (Result<GroupMembership, Rejection>) -> Void
    ) {
        // Wait even for a refusal: the join may have failed an overdue group or expired members.
        whenDurable(recorded.ticket, on: here) { failure in
            if let failure { return answer(.failure(failure)) }
            switch recorded.result {
            case .joined(let view, let order):
                self.stats.ordersCreated.increment()
                answer(.success(GroupMembership(view: view, order: order)))
            case .unknownGroup: answer(.failure(.unknownGroup))
            case .unknownSKU: answer(.failure(.unknownSKU))
            case .groupClosed: answer(.failure(.groupClosed))
            case .alreadyMember: answer(.failure(.alreadyMember))
            case .groupFull: answer(.failure(.groupFull))
            case .limitExceeded: answer(.failure(.limitExceeded))
            case .saleClosed(let closed): answer(.failure(Self.rejection(closed, event: event)))
            case .soldOut:
                self.stats.rejectedSoldOut.increment()
                answer(.failure(.soldOut))
            }
        }
    }
}
