/// Group-buy on the shard that owns the group's SKU: thin wrappers over `OrderBook`, each
/// recording the book's changes in decision order.
extension InventoryShard {
    /// Opens a group; its leader holds one unit.
    public func openGroup(_ request: OpenGroupRequest) -> Recorded<GroupJoinResult> {
        if let closed = saleClosed(request.key.event) { return Recorded(result: .saleClosed(closed), ticket: 0) }
        let result = book.openGroup(request)
        return Recorded(result: result, ticket: recordOutbox())
    }

    /// Adds a member to a group.
    public func joinGroup(_ id: GroupID, user: String, nowMs: Int64, paymentDeadlineMs: Int64) -> Recorded<GroupJoinResult> {
        if let group = book.groups.groups[id], let closed = saleClosed(group.key.event) {
            return Recorded(result: .saleClosed(closed), ticket: 0)
        }
        let result = book.joinGroup(id, user: user, nowMs: nowMs, paymentDeadlineMs: paymentDeadlineMs)
        return Recorded(result: result, ticket: recordOutbox())
    }

    /// Fails groups past their deadline (at most `limit`); returns them.
    public func failDueGroups(nowMs: Int64, limit: Int) -> [Group] {
        let failed = book.failDueGroups(nowMs: nowMs, limit: limit)
        _ = recordOutbox()
        return failed
    }

    /// One group with its member counts.
    public func group(_ id: GroupID) -> GroupView? { book.group(id) }

    /// Groups formed per event on this shard.
    public func groupsFormedByEvent() -> [String: Int] { book.groupsFormedByEvent }

    /// Whether `user` taking `qty` more of `key` would pass its limit (changes nothing).
    public func wouldExceedLimit(_ key: LedgerKey, user: String, qty: Int32) -> Bool {
        book.wouldExceedLimit(key, user: user, qty: qty)
    }

    /// Loads groups from storage (recovery), before their orders. Nothing is recorded.
    public func restore(groups: [Group]) {
        for group in groups { book.restore(group) }
    }

    /// Records the book's pending changes in order (telling the observer and the sold-out
    /// flags of each ledger touched); the last ticket (0 if none).
    func recordOutbox(then last: InventoryChange? = nil) -> UInt64 {
        var changes = book.takeChanges()
        if let last { changes.append(last) }
        guard !changes.isEmpty else { return 0 }
        // One unit: a crash must never leave a group formed in half (formed orders in an
        // open group would stop recovery on its invariants).
        let ticket = recordUnit(changes)
        for change in changes {
            switch change {
            case .order(let order): publish(order.key)
            case .group(let group): publish(group.key)
            case .restock, .doublePayment, .coupon: break
            }
        }
        return ticket
    }
}
