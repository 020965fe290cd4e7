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
///
/// Orders of a retired event leave (`removeAll(inSlot:where:)`): a chunk left with no order is
/// freed, so a slot's memory follows the orders it still holds, not every order it ever held.
/// A freed chunk is an empty array (shorter than its place says); its ids stay given out.
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
        // Through the subscripts, not a local copy of the chunk (a retain per lookup).
        let (chunk, offset) = (index / Self.chunkOrders, index % Self.chunkOrders)
        guard offset < slots[id.slot][chunk].count else { return nil }
        return slots[id.slot][chunk][offset]
    }

    /// Whether `id` was given out by this table but its order is no longer held (retired).
    func wasRemoved(_ id: OrderID) -> Bool {
        let index = Int(truncatingIfNeeded: id.sequence) - 1
        return index >= 0 && index < lengths[id.slot] && self[id] == nil
    }

    /// Stores or replaces `order` (its id says where).
    mutating func store(_ order: Order) {
        let slot = order.id.slot
        let index = Int(truncatingIfNeeded: order.id.sequence) - 1
        precondition(index >= 0, "order sequence 0")
        if index < lengths[slot] {
            let (chunk, offset) = (index / Self.chunkOrders, index % Self.chunkOrders)
            // A freed chunk (below a retired floor) takes an order again only at recovery.
            if offset >= slots[slot][chunk].count { pad(slot: slot, chunk: chunk, to: offset + 1) }
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
        let (chunk, offset) = (lengths[slot] / Self.chunkOrders, lengths[slot] % Self.chunkOrders)
        if chunk == slots[slot].count { slots[slot].append([]) }
        if slots[slot][chunk].count < offset { pad(slot: slot, chunk: chunk, to: offset) }
        slots[slot][chunk].append(order)
        lengths[slot] += 1
    }

    /// Grows a freed chunk back with holes up to `count` positions.
    private mutating func pad(slot: Int, chunk: Int, to count: Int) {
        let missing = count - slots[slot][chunk].count
        slots[slot][chunk].append(contentsOf: repeatElement(nil, count: missing))
    }

    /// Removes every order of `slot` for which `shouldRemove` is true, then frees each chunk
    /// left with no order (O(orders of the slot)).
    mutating func removeAll(inSlot slot: Int, where shouldRemove: (Order) -> Bool) {
        for chunk in slots[slot].indices where !slots[slot][chunk].isEmpty {
            var left = 0
            for offset in slots[slot][chunk].indices {
                guard let order = slots[slot][chunk][offset] else { continue }
                if shouldRemove(order) {
                    slots[slot][chunk][offset] = nil
                    count -= 1
                } else {
                    left += 1
                }
            }
            if left == 0 { slots[slot][chunk] = [] }
        }
    }

    /// Every order of `slot` (O(orders of the slot)).
    func orders(inSlot slot: Int) -> some Sequence<Order> {
        slots[slot].lazy.joined().compactMap { $0 }
    }

    /// Gives out no id of `slot` at or below `sequence` again: the orders a retired event held
    /// there are not loaded at recovery, but their ids stay theirs. Called before any load.
    mutating func raiseFloor(slot: Int, to sequence: UInt64) {
        let length = Int(truncatingIfNeeded: sequence)
        guard length > lengths[slot] else { return }
        // Whole chunks below the floor stay freed (empty); `append` and `store` pad the last.
        while slots[slot].count * Self.chunkOrders < length { slots[slot].append([]) }
        lengths[slot] = length
    }

    /// The last sequence given out in `slot` (0: none).
    func lastSequence(slot: Int) -> UInt64 { UInt64(lengths[slot]) }

    /// Makes room for `more` orders in `slot` (a bulk load): nothing to do, chunks never move.
    mutating func reserveCapacity(slot: Int, adding more: Int) {
        slots[slot].reserveCapacity((lengths[slot] + more) / Self.chunkOrders + 1)
    }

    /// Every order (O(orders)).
    var all: some Sequence<Order> {
        slots.lazy.joined().joined().compactMap { $0 }
    }
}
