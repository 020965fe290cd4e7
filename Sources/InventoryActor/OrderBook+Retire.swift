/// Retiring an event: long after its end, its orders, groups and ledgers leave memory.
///
/// A daemon runs sale after sale for months; what an ended sale held would otherwise stay in
/// memory for its life. Once an event has nothing left that can move by itself (no pending
/// order, no open group), one synchronous step takes out everything the book held of it and
/// returns what must stay known: each ledger's final counters, the groups it formed, the coupons
/// its orders spent and the last ids given out, which the engine makes durable.
/// Afterwards the book answers for those ids that they were retired, so the engine reads them
/// from storage, and never gives them out again.

/// A coupon spent by a paid order of a retired event: it stays spent after the order leaves.
public struct SpentCoupon: Sendable, Equatable {
    /// The coupon, as the order named it.
    public var code: String
    /// The order that spent it.
    public var order: OrderID

    /// Creates a record.
    public init(code: String, order: OrderID) {
        self.code = code
        self.order = order
    }
}

/// The last sequence given out in one slot, for orders or groups.
public struct SequenceFloor: Sendable, Equatable {
    /// Orders or groups.
    public enum Kind: Int, Sendable {
        /// Order ids.
        case orders = 0
        /// Group ids.
        case groups = 1
    }

    /// Whose ids.
    public var kind: Kind
    /// The slot.
    public var slot: Int
    /// Every id of that slot up to this sequence is taken.
    public var last: UInt64

    /// Creates a floor.
    public init(kind: Kind, slot: Int, last: UInt64) {
        self.kind = kind
        self.slot = slot
        self.last = last
    }
}

/// What one book held of a retired event, taken out of memory.
public struct RetiredPart: Sendable, Equatable {
    /// The event.
    public var event: String
    /// Each of its ledgers' counters at retirement (final: nothing can move them after).
    public var counters: [LedgerKey: StockCounters] = [:]
    /// Groups formed in it.
    public var groupsFormed = 0
    /// Orders that left memory.
    public var orders = 0
    /// Groups that left memory.
    public var groups = 0
    /// Coupons its paid orders spent.
    public var spentCoupons: [SpentCoupon] = []
    /// The last ids given out in the slots it used.
    public var floors: [SequenceFloor] = []

    /// Nothing of `event` yet.
    public init(event: String) {
        self.event = event
    }

    /// Adds another book's part of the same event.
    public mutating func merge(_ other: RetiredPart) {
        precondition(other.event == event, "parts of two events")
        counters.merge(other.counters) { first, _ in first }
        groupsFormed += other.groupsFormed
        orders += other.orders
        groups += other.groups
        spentCoupons += other.spentCoupons
        floors += other.floors
    }
}

/// Why an event cannot retire yet.
public enum RetireRefusal: Error, Sendable, Equatable {
    /// An order of it is still pending (its payment window has not run out or not been swept).
    case pendingOrder(OrderID)
    /// A group of it is still open.
    case openGroup(GroupID)
}

extension OrderBook {
    /// Takes every order, group and ledger of `event` out of this book, or changes nothing
    /// and says why not (a pending order, an open group). O(orders in the event's slots).
    public mutating func retire(event: String) -> Result<RetiredPart, RetireRefusal> {
        if let refusal = retireRefusal(event: event) { return .failure(refusal) }
        let keys = ledgers.keys.filter { $0.event == event }
        let slots = Set(keys.map(\.slot))
        var part = RetiredPart(event: event)
        for key in keys { part.counters[key] = ledgers.removeValue(forKey: key)!.counters }
        let retiredGroups = groups.groups.keys.filter { groups.groups[$0]!.key.event == event }
        for id in retiredGroups { groups.groups.removeValue(forKey: id) }
        groups.groups.shrinkIfSparse()
        ledgers.shrinkIfSparse()
        part.groups = retiredGroups.count
        part.groupsFormed = groups.formedByEvent.removeValue(forKey: event) ?? 0
        var removed = 0
        var spent: [SpentCoupon] = []
        for slot in slots.sorted() {
            orders.removeAll(inSlot: slot) { order in
                guard order.key.event == event else { return false }
                removed += 1
                if let coupon = order.coupon, order.status == .paid || order.status == .formed {
                    spent.append(SpentCoupon(code: coupon, order: order.id))
                }
                return true
            }
            part.floors.append(SequenceFloor(kind: .orders, slot: slot, last: orders.lastSequence(slot: slot)))
            part.floors.append(SequenceFloor(kind: .groups, slot: slot, last: groups.sequenceBySlot[slot, default: 0]))
        }
        part.orders = removed
        part.spentCoupons = spent
        // Double charges of those orders are in storage; a redelivery is answered from there.
        if !refunds.isEmpty { refunds = refunds.filter { orders[$0.key] != nil } }
        return .success(part)
    }

    /// Why `event` cannot retire now; nil when it can. Changes nothing.
    public func retireRefusal(event: String) -> RetireRefusal? {
        if let open = groups.groups.values.first(where: { $0.key.event == event && $0.status == .open }) {
            return .openGroup(open.id)
        }
        for slot in Set(ledgers.keys.lazy.filter { $0.event == event }.map(\.slot)) {
            if let pending = orders.orders(inSlot: slot).first(where: { $0.key.event == event && $0.status == .pending }) {
                return .pendingOrder(pending.id)
            }
        }
        return nil
    }

    /// What a payment notification does to `order` of a retired event, as storage holds it with
    /// the double charges recorded against it (`refunds`), and the change to record (nil: none).
    /// As `pay`, except that a late payment never takes stock again: the sale's ledgers are
    /// closed, so the money goes back (`refund_pending`).
    public static func payRetired(
        _ order: Order, refunds: [String], transaction: String, amountFen: Int64, nowMs: Int64
    ) -> (result: PaymentResult, change: InventoryChange?) {
        guard order.amountFen == amountFen else { return (.amountMismatch(expectedFen: order.amountFen), nil) }
        switch order.status {
        case .paid, .formed, .refundPending:
            if order.transaction == transaction { return (.duplicate(order), nil) }
            if refunds.contains(transaction) { return (.refundRepeated(order), nil) }
            return (.doublePayment(order), .doublePayment(order, transaction: transaction, atMs: nowMs))
        case .pending, .expired, .canceled:
            var refunded = order
            refunded.status = .refundPending
            refunded.transaction = transaction
            return (.lateRefund(refunded), .order(refunded))
        }
    }

    /// Whether `id` names an order this book gave out or loaded whose event has since retired.
    public func wasRetired(_ id: OrderID) -> Bool { orders.wasRemoved(id) }

    /// Whether `id` names a group of a retired event (given out, no longer held).
    public func wasRetired(_ id: GroupID) -> Bool {
        id.sequence >= 1 && id.sequence <= groups.sequenceBySlot[id.slot, default: 0] && groups.groups[id] == nil
    }

    /// Gives out no id at or below the retired floors again (recovery, before any load).
    public mutating func raiseFloors(_ floors: [SequenceFloor]) {
        for floor in floors {
            switch floor.kind {
            case .orders: orders.raiseFloor(slot: floor.slot, to: floor.last)
            case .groups: groups.sequenceBySlot[floor.slot] = max(groups.sequenceBySlot[floor.slot, default: 0], floor.last)
            }
        }
    }
}
