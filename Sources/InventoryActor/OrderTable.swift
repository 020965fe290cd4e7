/// The orders of one shard, stored by slot and sequence: an order id is an array index.
///
/// Each slot numbers its orders 1, 2, 3, ... so a slot's orders are a dense array and a lookup
/// is array indexing, with no hashing and no rehash as the table grows (a dictionary of a few
/// million orders spent most of a claim's time resizing and hashing). Sequences are per slot,
/// not per shard, so ids stay unique when the shard count changes between restarts.
///
/// A slot's orders live in fixed-size chunks: the table grows a chunk at a time and never
/// copies the orders it holds. (One growing array copied every order at each doubling: a third
/// of a claim's time in `inventory-bench --book`, and, on the shard's event loop, a copy of
/// every order held each time a slot of millions doubled.)
struct OrderTable: Sendable {
    /// Orders per chunk.
    static let chunkOrders = 4_096

    private var slots: [[[Order?]]] = Array(repeating: [], count: OrderID.slotCount)
    /// Positions used in each slot (orders and holes): the next sequence is this plus one.
    private var lengths: [Int] = Array(repeating: 0, count: OrderID.slotCount)
    /// Number of orders stored.
    private(set) var count = 0

    /// The id the next new order of `slot` gets.
    func nextID(slot: Int) -> OrderID {
        OrderID(sequence: UInt64(lengths[slot] + 1), slot: slot)
    }

    /// The order with `id`, if any.
    subscript(id: OrderID) -> Order? {
        let index = Int(truncatingIfNeeded: id.sequence) - 1
        guard index >= 0 && index < lengths[id.slot] else { return nil }
        return slots[id.slot][index / Self.chunkOrders][index % Self.chunkOrders]
    }

    /// Stores or replaces `order` (its id says where).
    mutating func store(_ order: Order) {
        let slot = order.id.slot
        let index = Int(truncatingIfNeeded: order.id.sequence) - 1
        precondition(index >= 0, "order sequence 0")
        if index < lengths[slot] {
            let (chunk, offset) = (index / Self.chunkOrders, index % Self.chunkOrders)
            if slots[slot][chunk][offset] == nil { count += 1 }
            slots[slot][chunk][offset] = order
            return
        }
        // Ids normally arrive in sequence; a gap (an id whose creation never became durable
        // before a crash cannot precede a durable one, but be safe) is padded with holes.
        while lengths[slot] < index { append(nil, slot: slot) }
        append(order, slot: slot)
        count += 1
    }

    /// Appends at the end of `slot`, opening a chunk when the last one is full.
    private mutating func append(_ order: Order?, slot: Int) {
        // A new chunk grows like any array (a slot with a few orders holds a few), up to
        // `chunkOrders`: what it copies as it grows stays small and in cache.
        if lengths[slot] % Self.chunkOrders == 0 { slots[slot].append([]) }
        slots[slot][slots[slot].count - 1].append(order)
        lengths[slot] += 1
    }

    /// Makes room for `more` orders in `slot` (a bulk load): nothing to do, chunks never move.
    mutating func reserveCapacity(slot: Int, adding more: Int) {
        slots[slot].reserveCapacity((lengths[slot] + more) / Self.chunkOrders + 1)
    }

    /// Every order (O(orders)).
    var all: some Sequence<Order> {
        slots.lazy.joined().joined().compactMap { $0 }
    }
}
