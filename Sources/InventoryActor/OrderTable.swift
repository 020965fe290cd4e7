/// The orders of one shard, stored by slot and sequence: an order id is an array index.
///
/// Each slot numbers its orders 1, 2, 3, ... so a slot's orders are a dense array and a lookup
/// is two array indexings, with no hashing and no rehash as the table grows (a dictionary of
/// a few million orders spent most of a claim's time resizing and hashing). Sequences are per
/// slot, not per shard, so ids stay unique when the shard count changes between restarts.
struct OrderTable: Sendable {
    private var slots: [[Order?]] = Array(repeating: [], count: OrderID.slotCount)
    /// Number of orders stored.
    private(set) var count = 0

    /// The id the next new order of `slot` gets.
    func nextID(slot: Int) -> OrderID {
        OrderID(sequence: UInt64(slots[slot].count + 1), slot: slot)
    }

    /// The order with `id`, if any.
    subscript(id: OrderID) -> Order? {
        let index = Int(truncatingIfNeeded: id.sequence) - 1
        let orders = slots[id.slot]
        return index >= 0 && index < orders.count ? orders[index] : nil
    }

    /// Stores or replaces `order` (its id says where).
    mutating func store(_ order: Order) {
        let slot = order.id.slot
        let index = Int(truncatingIfNeeded: order.id.sequence) - 1
        precondition(index >= 0, "order sequence 0")
        if index < slots[slot].count {
            if slots[slot][index] == nil { count += 1 }
            slots[slot][index] = order
        } else {
            // Ids normally arrive in sequence; a gap (an id whose creation never became durable
            // before a crash cannot precede a durable one, but be safe) is padded with holes.
            while slots[slot].count < index { slots[slot].append(nil) }
            slots[slot].append(order)
            count += 1
        }
    }

    /// Makes room for `more` orders in `slot`, so a bulk load grows its array once.
    mutating func reserveCapacity(slot: Int, adding more: Int) {
        slots[slot].reserveCapacity(slots[slot].count + more)
    }

    /// Every order (O(orders)).
    var all: some Sequence<Order> {
        slots.lazy.joined().compactMap { $0 }
    }
}
