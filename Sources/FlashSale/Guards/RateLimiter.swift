import Synchronization

/// The per-IP token buckets of §3.2, in `shardCount` mutex-guarded maps so that request
/// threads rarely wait on one another.
///
/// Memory is bounded by `entriesMax` buckets in all (`bytesMax` bytes of table). A bucket that
/// has been left alone long enough to be full again is idle: it is dropped (dropping it
/// changes no answer). Each shard sweeps its idle buckets every `sweepIntervalMs` and whenever
/// it is full. If a shard is still full of active buckets (a flood from more distinct addresses
/// than the table holds), it drops an arbitrary sixteenth of them: those addresses start again
/// with a full bucket, so a flood can win at most `burst` extra requests per address per
/// eviction, and the table never grows.
public final class RateLimiter: Sendable {
    /// Mutex-guarded maps, shards: enough that two cores hardly ever contend.
    static let shardCount = 64

    private let shards: [ShardLock]
    /// Sustained requests per second per address.
    public let ratePerSecond: Double
    /// Requests at once per address.
    public let burst: Int
    private let fullRefillMs: Int64
    /// Buckets one shard holds at most.
    private let shardEntriesMax: Int
    /// Buckets held at most, entries (`entriesMax` rounded down to a multiple of the shard count).
    public let entriesMax: Int

    /// Table bytes at most, bytes: `entriesMax × bytesPerEntryMax`.
    public var bytesMax: Int { entriesMax * EngineLimits.rateLimitBucketBytesMax }

    /// One shard's table behind its own mutex (a class: `Mutex` cannot sit in an array).
    final class ShardLock: Sendable {
        let mutex = Mutex(Shard())
        func withLock<R>(_ body: (inout sending Shard) throws -> sending R) rethrows -> sending R { try mutex.withLock(body) }
    }

    struct Shard {
        var buckets: [ClientAddress: TokenBucket] = [:]
        var lastSweepMs: Int64 = 0
    }

    /// A limiter allowing `burst` requests at once and `ratePerSecond` sustained, per address.
    public init(ratePerSecond: Double, burst: Int, entriesMax: Int = EngineLimits.rateLimitBucketsMax) {
        precondition(ratePerSecond > 0 && burst >= 1, "rate limit must allow something")
        precondition(entriesMax >= Self.shardCount, "rate limiter table below one entry per shard")
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        self.fullRefillMs = Int64((Double(burst) / ratePerSecond * 1000).rounded(.up))
        self.shardEntriesMax = entriesMax / Self.shardCount
        self.entriesMax = shardEntriesMax * Self.shardCount
        self.shards = (0..<Self.shardCount).map { _ in ShardLock() }
    }

    /// Takes a token for `address` (an IPv4 address, or the /64 of an IPv6 one) at `nowMs`.
    public func take(_ client: ClientAddress, nowMs: Int64) -> RateLimitDecision {
        let address = client.perIPClient
        // Fibonacci hashing: the top bits of the product mix every bit of the address.
        let shard = Int(truncatingIfNeeded: ((address.low ^ address.high) &* 0x9E37_79B9_7F4A_7C15) >> 58) & (Self.shardCount - 1)
        return shards[shard].withLock { shard in
            if nowMs - shard.lastSweepMs >= EngineLimits.rateLimitSweepIntervalMs {
                sweepIdle(&shard, nowMs: nowMs)
            }
            if shard.buckets[address] == nil && shard.buckets.count >= shardEntriesMax {
                sweepIdle(&shard, nowMs: nowMs)
                if shard.buckets.count >= shardEntriesMax { evictSome(&shard) }
            }
            return shard.buckets[address, default: TokenBucket(burst: burst, nowMs: nowMs)]
                .take(nowMs: nowMs, ratePerSecond: ratePerSecond, burst: burst)
        }
    }

    /// Buckets held now (all shards).
    public var entryCount: Int {
        var count = 0
        for shard in shards { count += shard.withLock { $0.buckets.count } }
        return count
    }

    /// Bytes the tables have allocated for buckets now (capacity × entry stride, all shards):
    /// what `bytesMax` bounds.
    public var tableBytes: Int {
        let stride = MemoryLayout<ClientAddress>.stride + MemoryLayout<TokenBucket>.stride
        // A dictionary allocates a power-of-two bucket count at most 4/3 of its capacity.
        var bytes = 0
        for shard in shards {
            let capacity = shard.withLock { $0.buckets.capacity }
            bytes += (capacity * 4 / 3 + 1) * stride
        }
        return bytes
    }

    private func sweepIdle(_ shard: inout Shard, nowMs: Int64) {
        shard.lastSweepMs = nowMs
        let fullRefillMs = fullRefillMs
        shard.buckets = shard.buckets.filter { !$0.value.isIdle(nowMs: nowMs, fullRefillMs: fullRefillMs) }
    }

    private func evictSome(_ shard: inout Shard) {
        let target = shardEntriesMax - max(1, shardEntriesMax / 16)
        let victims = Array(shard.buckets.keys.prefix(max(0, shard.buckets.count - target)))
        for key in victims { shard.buckets.removeValue(forKey: key) }
    }
}
