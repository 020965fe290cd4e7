/// Group-buy in the book: a group lives with the ledger of its SKU, so opening, joining,
/// paying, forming and failing are each one synchronous step on one shard.
///
/// Live members are the group's pending and paid orders; a member order that expires or is
/// canceled frees its slot. Paid member orders keep their unit `reserved` until `size` members
/// have paid; then the group and those orders are `formed` and the units `sold`. A group still
/// open at its deadline fails: pending members are canceled, paid ones become `refund_pending`,
/// and every unit goes back to available.
extension OrderBook {
    /// One group with its member counts.
    public func group(_ id: GroupID) -> GroupView? {
        groups.groups[id].map(view)
    }

    /// Groups formed in `event` on this shard.
    public func groupsFormed(event: String) -> Int { groups.formedByEvent[event, default: 0] }

    /// Groups formed per event on this shard.
    public var groupsFormedByEvent: [String: Int] { groups.formedByEvent }

    /// Whether `user` taking `qty` more of `key` would pass its limit (an error-order check
    /// made when a coupon is invalid; changes nothing).
    public func wouldExceedLimit(_ key: LedgerKey, user: String, qty: Int32) -> Bool {
        guard let ledger = ledgers[key] else { return false }
        return Int64(ledger.quantity(of: user)) + Int64(qty) > Int64(ledger.limitPerUser)
    }

    /// Opens a group led by `request.user`, who holds one unit in it at once.
    public mutating func openGroup(_ request: OpenGroupRequest) -> GroupJoinResult {
        guard ledgers[request.key] != nil else { return .unknownSKU }
        precondition(request.size >= 1, "group size below 1")
        let id = groups.nextIDPeek(slot: request.key.slot)
        var group = Group(
            id: id, key: request.key, size: request.size, priceFen: request.priceFen, leader: request.user,
            createdAtMs: request.nowMs, expiresAtMs: request.groupDeadlineMs, status: .open)
        let order: Order
        switch addMember(to: &group, user: request.user, nowMs: request.nowMs, paymentDeadlineMs: request.paymentDeadlineMs) {
        case .success(let added): order = added
        case .failure(let refusal): return refusal.result
        }
        groups.commitID(id)
        groups.groups[id] = group
        groups.deadlines.push(deadlineMs: group.expiresAtMs, id: id)
        // The group before its first order: recovery needs the group to attach orders to.
        outbox.append(.group(group))
        outbox.append(.order(order))
        return .joined(view(group), order)
    }

    /// Adds `user` to group `id`, holding one unit for them.
    public mutating func joinGroup(_ id: GroupID, user: String, nowMs: Int64, paymentDeadlineMs: Int64) -> GroupJoinResult {
        guard groups.groups[id] != nil else { return .unknownGroup }
        failGroupIfDue(id, nowMs: nowMs)
        guard groups.groups[id]!.status == .open else { return .groupClosed }
        // Members past their payment deadline free their slots now, not at the next sweep.
        for member in groups.groups[id]!.members {
            if let order = orders[member], order.status == .pending, nowMs >= order.expiresAtMs {
                outbox.append(.order(move(order, to: .expired)))
            }
        }
        // Canceled and expired members leave the list (a late payment puts its order back):
        // without this, join-and-cancel cycles would grow it without bound, and every join
        // reads it whole. Between two joins it holds at most `size` live members plus those
        // that died since.
        groups.groups[id]!.members.removeAll { Self.isDeadMember(orders[$0]) }
        var group = groups.groups[id]!
        switch addMember(to: &group, user: user, nowMs: nowMs, paymentDeadlineMs: paymentDeadlineMs) {
        case .success(let order):
            groups.groups[id] = group
            outbox.append(.order(order))
            return .joined(view(group), order)
        case .failure(let refusal):
            return refusal.result
        }
    }

    /// Fails every open group whose deadline is at or before `nowMs`, at most `limit`; returns them.
    public mutating func failDueGroups(nowMs: Int64, limit: Int = .max) -> [Group] {
        var failed: [Group] = []
        while failed.count < limit, let id = groups.deadlines.popDue(nowMs: nowMs) {
            guard let group = groups.groups[id], group.status == .open else { continue }
            failGroup(id)
            failed.append(groups.groups[id]!)
        }
        return failed
    }

    /// Hands over the changes decided beyond each result's own, in decision order.
    public mutating func takeChanges() -> [InventoryChange] {
        guard !outbox.isEmpty else { return [] }
        // Handed over whole: the next change starts a small array, rather than one as large
        // as the biggest burst ever taken (the caller holds this storage anyway).
        var taken: [InventoryChange] = []
        swap(&taken, &outbox)
        return taken
    }

    /// Loads a group from storage (recovery), before its orders; a formed group counts toward
    /// its event, an open one gets its deadline back.
    public mutating func restore(_ group: Group) {
        precondition(groups.groups[group.id] == nil, "group \(group.id) restored twice")
        precondition(group.members.isEmpty, "group \(group.id) restored with members: they come from orders")
        groups.groups[group.id] = group
        groups.sequenceBySlot[group.id.slot] = max(groups.sequenceBySlot[group.id.slot, default: 0], group.id.sequence)
        switch group.status {
        case .open: groups.deadlines.push(deadlineMs: group.expiresAtMs, id: group.id)
        case .formed: groups.formedByEvent[group.key.event, default: 0] += 1
        case .failed: break
        }
        if ledgers[group.key] == nil { ledgers[group.key] = StockLedger(total: 0, limitPerUser: .max) }
    }

    // MARK: Steps

    private enum Refusal: Error {
        case alreadyMember, groupFull, limitExceeded, soldOut

        var result: GroupJoinResult {
            switch self {
            case .alreadyMember: .alreadyMember
            case .groupFull: .groupFull
            case .limitExceeded: .limitExceeded
            case .soldOut: .soldOut
            }
        }
    }

    /// Reserves one unit for `user` and adds their new pending order to `group`, or changes nothing.
    private mutating func addMember(to group: inout Group, user: String, nowMs: Int64, paymentDeadlineMs: Int64) -> Result<Order, Refusal> {
        var live = 0
        for member in group.members {
            guard let order = orders[member], order.status == .pending || order.status == .paid else { continue }
            if order.user == user { return .failure(.alreadyMember) }
            live += 1
        }
        if live >= Int(group.size) { return .failure(.groupFull) }
        switch ledgers[group.key]!.reserve(user: user, qty: 1) {
        case .limitExceeded: return .failure(.limitExceeded)
        case .soldOut: return .failure(.soldOut)
        case .reserved: break
        }
        let id = orders.nextID(slot: group.key.slot)
        let order = Order(
            id: id, key: group.key, user: user, qty: 1, amountFen: group.priceFen, discountFen: 0,
            createdAtMs: nowMs, expiresAtMs: min(paymentDeadlineMs, group.expiresAtMs), status: .pending,
            transaction: nil, group: group.id)
        orders.store(order)
        expiries.push(deadlineMs: order.expiresAtMs, id: id)
        group.members.append(id)
        return .success(order)
    }

    /// Fails group `id` if it is open and its deadline has passed.
    mutating func failGroupIfDue(_ id: GroupID, nowMs: Int64) {
        guard let group = groups.groups[id], group.status == .open, nowMs >= group.expiresAtMs else { return }
        failGroup(id)
    }

    /// Open → failed: pending members canceled, paid ones to be refunded, every unit back.
    private mutating func failGroup(_ id: GroupID) {
        var group = groups.groups[id]!
        precondition(group.status == .open, "failing a \(group.status) group")
        for member in group.members {
            guard var order = orders[member] else { continue }
            switch order.status {
            case .pending:
                outbox.append(.order(move(order, to: .canceled)))
            case .paid:
                ledgers[order.key]!.release(user: order.user, qty: order.qty)
                order.status = .refundPending
                orders.store(order)
                outbox.append(.order(order))
            default:
                break
            }
        }
        group.status = .failed
        groups.groups[id] = group
        outbox.append(.group(group))
    }

    /// Forms group `id` if `size` members have paid: their orders `formed`, their units sold.
    /// Returns whether it formed now.
    mutating func formGroupIfComplete(_ id: GroupID) -> Bool {
        var group = groups.groups[id]!
        guard group.status == .open else { return false }
        let paid = group.members.filter { orders[$0]?.status == .paid }
        guard paid.count >= Int(group.size) else { return false }
        precondition(paid.count == Int(group.size), "group \(id) has \(paid.count) paid members, size \(group.size)")
        for member in paid {
            var order = orders[member]!
            ledgers[order.key]!.commit(qty: order.qty)
            order.status = .formed
            orders.store(order)
            outbox.append(.order(order))
        }
        group.status = .formed
        groups.groups[id] = group
        groups.formedByEvent[group.key.event, default: 0] += 1
        outbox.append(.group(group))
        return true
    }

    /// A late payment of an expired or canceled member order: back in its group (paid, unit
    /// reserved, perhaps forming it) if the group is open, has room and stock; else refund pending.
    mutating func latePayGroupOrder(_ paidLate: Order, nowMs: Int64) -> PaymentResult {
        var order = paidLate
        let id = order.group!
        let group = groups.groups[id]!
        let live = group.members.count { member in
            guard let other = orders[member] else { return false }
            return other.status == .pending || other.status == .paid
        }
        if group.status == .open, nowMs < group.expiresAtMs, live < Int(group.size),
            ledgers[order.key]!.retakeReserved(user: order.user, qty: order.qty)
        {
            order.status = .paid
            orders.store(order)
            if !groups.groups[id]!.members.contains(order.id) { groups.groups[id]!.members.append(order.id) }
            if formGroupIfComplete(id) { order = orders[order.id]! }
            return .latePaid(order)
        }
        order.status = .refundPending
        orders.store(order)
        return .lateRefund(order)
    }

    /// A member order that holds nothing and can only come back by a late payment.
    static func isDeadMember(_ order: Order?) -> Bool {
        guard let order else { return true }
        return order.status == .canceled || order.status == .expired
    }

    /// The view of `group` with its live and paid member counts.
    private func view(_ group: Group) -> GroupView {
        var live = 0
        var paid = 0
        for member in group.members {
            switch orders[member]?.status {
            case .pending?: live += 1
            case .paid?, .formed?:
                live += 1
                paid += 1
            default: break
            }
        }
        return GroupView(group: group, members: live, paid: paid)
    }

    /// Traps unless no group has more live members than its size, every formed group has exactly
    /// `size` formed orders, and every member order names its group.
    func verifyGroupInvariants() {
        var formed: [String: Int] = [:]
        for group in groups.groups.values {
            let view = view(group)
            precondition(view.members <= Int(group.size), "group \(group.id): \(view.members) live members, size \(group.size)")
            for member in group.members {
                let order = orders[member]
                precondition(order?.group == group.id, "group \(group.id): member \(member) is not its order")
                switch group.status {
                case .open: precondition(order?.status != .formed, "open group \(group.id) has a formed order")
                case .formed: precondition(order?.status != .pending && order?.status != .paid, "formed group \(group.id) has a live unformed order")
                case .failed: precondition(order?.status != .pending && order?.status != .paid && order?.status != .formed, "failed group \(group.id) has a live order")
                }
            }
            if group.status == .formed {
                precondition(view.paid == Int(group.size), "formed group \(group.id) has \(view.paid) paid members, size \(group.size)")
                formed[group.key.event, default: 0] += 1
            }
        }
        precondition(formed == groups.formedByEvent.filter { $0.value > 0 }, "groups formed per event differ from the groups")
    }
}
