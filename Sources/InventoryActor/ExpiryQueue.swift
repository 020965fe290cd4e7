/// A binary min-heap of (deadline, id) pairs: which pending order (or open group) expires next.
///
/// Entries are not removed when an order is paid or canceled; `OrderBook` skips those when
/// they surface, which keeps every transition O(log n) at most.
struct ExpiryQueue<ID: Sendable>: Sendable {
    private var heap: [(deadlineMs: Int64, id: ID)] = []

    var count: Int { heap.count }

    /// Room kept however few entries remain (a quiet shard's deadlines need no reallocation).
    static var keptCapacity: Int { 1_024 }

    /// Entries the heap has room for without growing (tests).
    var capacity: Int { heap.capacity }

    /// Makes room for `more` entries, so a bulk load grows the heap once.
    mutating func reserveCapacity(adding more: Int) { heap.reserveCapacity(heap.count + more) }

    mutating func push(deadlineMs: Int64, id: ID) {
        heap.append((deadlineMs, id))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if heap[parent].deadlineMs <= heap[child].deadlineMs { break }
            heap.swapAt(parent, child)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if its deadline is at or before `nowMs`.
    mutating func popDue(nowMs: Int64) -> ID? {
        guard let first = heap.first, first.deadlineMs <= nowMs else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < heap.count && heap[left].deadlineMs < heap[smallest].deadlineMs { smallest = left }
                if right < heap.count && heap[right].deadlineMs < heap[smallest].deadlineMs { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        // An array keeps its peak capacity: after a sale's burst has drained, give it back
        // (amortized O(1): the copy happens only once three quarters have been popped).
        if heap.capacity > Self.keptCapacity && heap.count < heap.capacity / 4 {
            var compact: [(deadlineMs: Int64, id: ID)] = []
            compact.reserveCapacity(max(Self.keptCapacity, 2 * heap.count))
            compact.append(contentsOf: heap)
            heap = compact
        }
        return first.id
    }
}
