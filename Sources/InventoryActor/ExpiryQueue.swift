/// A binary min-heap of (deadline, id) pairs: which pending order (or open group) expires next.
///
/// Entries are not removed when an order is paid or canceled; `OrderBook` skips those when
/// they surface, which keeps every transition O(log n) at most.
struct ExpiryQueue<ID: Sendable>: Sendable {
    private var heap: [(deadlineMs: Int64, id: ID)] = []

    var count: Int { heap.count }

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
        return first.id
    }
}
