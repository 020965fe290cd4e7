import Synchronization

/// Payment-notification nonces seen within the last `windowSeconds` (contract 3.7: `409 replay`).
///
/// Bounded twice: entries older than the window are dropped as time passes (each shard keeps
/// a FIFO of insertions, trimmed from the front on every insert, so the work is amortized
/// O(1)), and no shard holds more than its share of `capacity`: past it, the shard's oldest
/// entries are evicted. Evicting a nonce still inside the window only weakens replay
/// detection for it; a replayed notification is still harmless, because payments are
/// idempotent by transaction id. Notifications older than the window are refused as `stale`
/// before they get here, so the window needs no longer memory.
///
/// Thread-safe: nonces are spread over shards by hash, each shard behind its own `Mutex`.
public final class NonceCache: Sendable {
    /// Shards for caches of at least `shardingCapacityMin` entries; fewer would make each
    /// shard's share of the capacity too coarse.
    static let shardCount = 16
    static let shardingCapacityMin = 1024

    private struct Entry {
        let nonce: String
        let insertedSeconds: Int64
    }

    /// One shard: the nonces it holds and the order they came in.
    private struct Shard {
        /// Nonce → time of its latest insertion.
        var seconds: [String: Int64] = [:]
        /// Insertions, oldest first, from `head` on. Each live nonce's latest insertion is
        /// here; an older one of the same nonce is stale and skipped when it reaches the front.
        var fifo: [Entry] = []
        var head = 0

        var fifoCount: Int { fifo.count - head }

        mutating func popFront() {
            let entry = fifo[head]
            head += 1
            if seconds[entry.nonce] == entry.insertedSeconds {
                seconds[entry.nonce] = nil
            }
            // Compact once the dead prefix is half the array: amortized O(1) per pop.
            if head >= 64, head * 2 >= fifo.count {
                fifo.removeFirst(head)
                head = 0
            }
        }

        mutating func insertIfAbsent(_ nonce: String, nowSeconds: Int64, windowSeconds: Int64, capacity: Int) -> Bool {
            // Insertions are in time order (unless the clock stepped back), so expired ones
            // are at the front.
            while fifoCount > 0, nowSeconds - fifo[head].insertedSeconds >= windowSeconds {
                popFront()
            }
            if let seen = seconds[nonce], nowSeconds - seen < windowSeconds {
                return false
            }
            seconds[nonce] = nowSeconds
            fifo.append(Entry(nonce: nonce, insertedSeconds: nowSeconds))
            // fifoCount >= seconds.count (every live nonce has an entry), so this bounds both.
            while fifoCount > capacity {
                popFront()
            }
            return true
        }
    }

    private final class ShardBox: Sendable {
        let state = Mutex(Shard())
    }

    /// How long a nonce is remembered, in seconds.
    public let windowSeconds: Int64
    /// The most nonces held at once.
    public let capacity: Int
    private let shards: [ShardBox]
    private let shardCapacity: Int

    /// Creates an empty cache remembering nonces for `windowSeconds`, at most `capacity` of them.
    public init(windowSeconds: Int64 = 300, capacity: Int) {
        precondition(windowSeconds > 0, "windowSeconds must be positive")
        precondition(capacity > 0, "capacity must be positive")
        self.windowSeconds = windowSeconds
        self.capacity = capacity
        let shardCount = capacity >= Self.shardingCapacityMin ? Self.shardCount : 1
        self.shards = (0..<shardCount).map { _ in ShardBox() }
        self.shardCapacity = capacity / shardCount
    }

    /// Records `nonce` at `nowSeconds`; false if it was already seen less than
    /// `windowSeconds` ago (a replay), true if it is new (or its last sighting has expired).
    public func insertIfAbsent(_ nonce: String, nowSeconds: Int64) -> Bool {
        let box = shards.count == 1 ? shards[0] : shards[Int(UInt(bitPattern: nonce.hashValue) % UInt(shards.count))]
        let windowSeconds = windowSeconds
        let shardCapacity = shardCapacity
        return box.state.withLock { shard in
            shard.insertIfAbsent(nonce, nowSeconds: nowSeconds, windowSeconds: windowSeconds, capacity: shardCapacity)
        }
    }

    /// The number of nonces held now (including expired ones not yet trimmed).
    public var count: Int {
        shards.reduce(0) { total, box in total + box.state.withLock { $0.seconds.count } }
    }
}
