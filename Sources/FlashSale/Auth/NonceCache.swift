import Synchronization

/// Payment-notification nonces, each remembered until its notification's timestamp has
/// left the acceptance window (§3.7: `409 replay`; a nonce is remembered until its
/// timestamp + 300 s, so a notification stamped in the future is refused as a replay for
/// all the time it could be accepted).
///
/// The engine reserves a nonce while its notification runs and releases it unless the
/// notification is accepted (a `503` has not used its nonce); accepted nonces are journaled
/// and restored at a restart.
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
        /// Remembered while the clock is before this, unix seconds.
        let untilSeconds: Int64
    }

    /// One shard: the nonces it holds and the order they came in.
    private struct Shard {
        /// Nonce → until when its latest insertion is remembered.
        var seconds: [String: Int64] = [:]
        /// Insertions, oldest first, from `head` on. Each live nonce's latest insertion is
        /// here; an older one of the same nonce is stale and skipped when it reaches the front.
        var fifo: [Entry] = []
        var head = 0

        var fifoCount: Int { fifo.count - head }

        mutating func popFront() {
            let entry = fifo[head]
            head += 1
            if seconds[entry.nonce] == entry.untilSeconds {
                seconds[entry.nonce] = nil
            }
            // Compact once the dead prefix is half the array: amortized O(1) per pop.
            if head >= 64, head * 2 >= fifo.count {
                fifo.removeFirst(head)
                head = 0
            }
        }

        mutating func insertIfAbsent(_ nonce: String, untilSeconds: Int64, nowSeconds: Int64, capacity: Int) -> Bool {
            // Insertions come nearly in expiry order (timestamps within the skew window), so
            // expired ones are at the front; one a little out of order waits its turn (bounded
            // by the window).
            while fifoCount > 0, fifo[head].untilSeconds <= nowSeconds {
                popFront()
            }
            if let until = seconds[nonce], nowSeconds < until {
                return false
            }
            seconds[nonce] = untilSeconds
            fifo.append(Entry(nonce: nonce, untilSeconds: untilSeconds))
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

    /// Records `nonce` at `nowSeconds` for `windowSeconds`; false if it is remembered now (a
    /// replay), true if it is new (or its last sighting has expired).
    public func insertIfAbsent(_ nonce: String, nowSeconds: Int64) -> Bool {
        reserve(nonce, untilSeconds: nowSeconds + windowSeconds, nowSeconds: nowSeconds)
    }

    /// Records `nonce`, remembered until `untilSeconds`; false if it is remembered now (a replay).
    public func reserve(_ nonce: String, untilSeconds: Int64, nowSeconds: Int64) -> Bool {
        let shardCapacity = shardCapacity
        return box(nonce).state.withLock { shard in
            shard.insertIfAbsent(nonce, untilSeconds: untilSeconds, nowSeconds: nowSeconds, capacity: shardCapacity)
        }
    }

    /// Forgets `nonce` if its entry is still the one `reserve(_:untilSeconds:nowSeconds:)`
    /// made with `untilSeconds` (its notification was not accepted: the nonce is unused).
    public func release(_ nonce: String, untilSeconds: Int64) {
        box(nonce).state.withLock { shard in
            if shard.seconds[nonce] == untilSeconds { shard.seconds[nonce] = nil }
        }
    }

    /// Forgets every nonce, then remembers `entries` (nonce, until) not yet expired at
    /// `nowSeconds` (recovery and the rebuild after a failed commit).
    public func restore(_ entries: [(nonce: String, untilSeconds: Int64)], nowSeconds: Int64) {
        for box in shards { box.state.withLock { $0 = Shard() } }
        for entry in entries where entry.untilSeconds > nowSeconds {
            _ = reserve(entry.nonce, untilSeconds: entry.untilSeconds, nowSeconds: nowSeconds)
        }
    }

    private func box(_ nonce: String) -> ShardBox {
        shards.count == 1 ? shards[0] : shards[Int(UInt(bitPattern: nonce.hashValue) % UInt(shards.count))]
    }

    /// The number of nonces held now (including expired ones not yet trimmed).
    public var count: Int {
        shards.reduce(0) { total, box in total + box.state.withLock { $0.seconds.count } }
    }
}
