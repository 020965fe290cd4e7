import Crypto
import FlashSaleJournal
import Synchronization

extension IdempotentAnswer {
    /// Bytes this answer holds in memory, for the store's byte bound.
    var accountedBytes: Int {
        user.utf8.count + key.utf8.count + body.count + (requestDigest?.utf8.count ?? 0) + EngineLimits.idempotentAnswerOverheadBytes
    }
}

/// A request admitted to run under an `Idempotency-Key`: the only one for its user and key
/// until `IdempotencyStore.finish` is called with it.
public final class IdempotencyClaim: Sendable {
    /// The buyer.
    public let user: String
    /// The key.
    public let key: String
    /// The request it runs (`IdempotencyStore.digest`).
    public let requestDigest: String
    private let recorded = Mutex<IdempotentAnswer?>(nil)

    init(user: String, key: String, requestDigest: String) {
        self.user = user
        self.key = key
        self.requestDigest = requestDigest
    }

    /// The journal record for answering `status` with `body` at `nowMs`, remembered so that
    /// `finish` does not write it twice. The engine appends it right after the change it
    /// answers and answers once both are durable.
    public func record(status: Int, body: [UInt8], nowMs: Int64) -> JournalRecord {
        let answer = IdempotentAnswer(user: user, key: key, status: status, body: body, atMs: nowMs, requestDigest: requestDigest)
        recorded.withLock { $0 = answer }
        return .idempotentAnswer(answer)
    }

    /// The answer handed to the journal by `record`, if any.
    public var journaledAnswer: IdempotentAnswer? { recorded.withLock { $0 } }

    /// The answer to store for a response given without `record` (a refusal, which changed
    /// nothing): `status` and `body` at `nowMs`.
    public func refusal(status: Int, body: [UInt8], nowMs: Int64) -> IdempotentAnswer {
        IdempotentAnswer(user: user, key: key, status: status, body: body, atMs: nowMs, requestDigest: requestDigest)
    }
}

/// First answers to `Idempotency-Key` requests: a repeat by the same user with the same key
/// within `windowMs` gets the first answer back, and a concurrent repeat waits for it rather
/// than running twice. Reusable by any route (orders today, group open/join next).
///
/// Bounded: at most `entriesMax` answers and `bytesMax` bytes of them, in mutex-guarded
/// shards. Answers expire after `windowMs`; past either bound the oldest answers are dropped
/// first (a retry that old then runs again, as if its key were new). Requests in flight are
/// not counted: there are at most `admission.max_inflight` of them.
public final class IdempotencyStore: Sendable {
    /// Mutex-guarded shards.
    static let shardCount = 16

    /// Whether `key` is a valid `Idempotency-Key`: 1...64 visible ASCII characters.
    public static func isValidKey(_ key: some StringProtocol) -> Bool {
        let utf8 = key.utf8
        return (1...EngineLimits.idempotencyKeyBytesMax).contains(utf8.count) && utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// What `begin` decided.
    public enum Admission: Sendable {
        /// Run the request, then call `finish` with this claim.
        case proceed(IdempotencyClaim)
        /// A repeat: answer this.
        case replay(IdempotentAnswer)
        /// Too many repeats are already waiting for the first.
        case busy
        /// The key is bound to a different request: `422 idempotency_mismatch`.
        case mismatch
    }

    /// What `beginNow` decided: an admission, or that the first request with this key is
    /// still running and a repeat must wait for it (`begin` waits).
    public enum ImmediateAdmission: Sendable {
        case decided(Admission)
        case firstStillRunning
    }

    /// The digest binding a key to its request (§3.4): SHA-256 over the method, the
    /// path and the body, in hex.
    public static func digest(method: String, path: String, body: [UInt8]) -> String {
        var hasher = SHA256()
        var method = method, path = path
        method.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        withUnsafeBytes(of: UInt8(0x20)) { hasher.update(bufferPointer: $0) }
        path.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        withUnsafeBytes(of: UInt8(0x0A)) { hasher.update(bufferPointer: $0) }
        body.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        let hex = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: SHA256.byteCount * 2) { text in
            var index = 0
            for byte in hasher.finalize() {
                text[index] = hex[Int(byte >> 4)]
                text[index + 1] = hex[Int(byte & 0x0F)]
                index += 2
            }
            return index
        }
    }

    enum WaitOutcome {
        case admission(Admission)
        case answered(IdempotentAnswer?)
    }

    typealias Waiter = CheckedContinuation<WaitOutcome, Never>

    struct EntryKey: Hashable {
        var user: String
        var key: String
    }

    enum Entry {
        /// The first request is running; `digest` is its request's.
        case inFlight([Waiter], digest: String)
        case done(IdempotentAnswer)
    }

    /// One shard's table behind its own mutex (a class: `Mutex` cannot sit in an array).
    final class ShardLock: Sendable {
        let mutex = Mutex(Shard())
        func withLock<R>(_ body: (inout sending Shard) throws -> sending R) rethrows -> sending R { try mutex.withLock(body) }
    }

    struct Shard {
        var entries: [EntryKey: Entry] = [:]
        /// Answers in the order they were stored (oldest at `head`); stale slots are skipped.
        var order: [(EntryKey, atMs: Int64)] = []
        var head = 0
        var doneCount = 0
        var bytes = 0
    }

    private let shards: [ShardLock]
    private let shardEntriesMax: Int
    private let shardBytesMax: Int

    /// A store holding at most `entriesMax` answers and `bytesMax` bytes of them.
    public init(entriesMax: Int = EngineLimits.idempotentAnswersMax, bytesMax: Int = EngineLimits.idempotentAnswerBytesMax) {
        precondition(entriesMax >= Self.shardCount && bytesMax >= Self.shardCount * 1024, "idempotency store too small")
        shardEntriesMax = entriesMax / Self.shardCount
        shardBytesMax = bytesMax / Self.shardCount
        shards = (0..<Self.shardCount).map { _ in ShardLock() }
    }

    private func shard(_ key: EntryKey) -> ShardLock {
        shards[Int(UInt(bitPattern: key.hashValue) % UInt(Self.shardCount))]
    }

    /// Admits the first request for `user` + `key`, replays a stored answer to a repeat, or
    /// waits for the answer of a repeat's first request that is still running; `mismatch` when
    /// the key is bound to a request with another `digest`.
    public func begin(user: String, key: String, digest: String, nowMs: Int64) async -> Admission {
        let entryKey = EntryKey(user: user, key: key)
        while true {
            let outcome = await withCheckedContinuation { (continuation: Waiter) in
                let immediate = shard(entryKey).withLock { shard -> Admission? in
                    switch decide(&shard, entryKey, digest: digest, nowMs: nowMs) {
                    case .decided(let admission): return admission
                    case .firstStillRunning:
                        guard case .inFlight(var waiters, let running) = shard.entries[entryKey] else { preconditionFailure("not in flight") }
                        guard waiters.count < EngineLimits.idempotentRepeatsWaitingMax else { return .busy }
                        waiters.append(continuation)
                        shard.entries[entryKey] = .inFlight(waiters, digest: running)
                        return nil
                    }
                }
                if let immediate { continuation.resume(returning: .admission(immediate)) }
            }
            switch outcome {
            case .admission(let admission): return admission
            case .answered(let answer?): return .replay(answer)
            // The first request gave up (a 5xx, a 400): run this one as the first.
            case .answered(nil): continue
            }
        }
    }

    /// `begin` without waiting: `.firstStillRunning` instead (nothing is registered; the
    /// caller goes on with `begin`, which waits).
    public func beginNow(user: String, key: String, digest: String, nowMs: Int64) -> ImmediateAdmission {
        let entryKey = EntryKey(user: user, key: key)
        return shard(entryKey).withLock { shard in decide(&shard, entryKey, digest: digest, nowMs: nowMs) }
    }

    /// The admission for `entryKey` now (under its shard's lock); admits a first request by
    /// marking it in flight.
    private func decide(_ shard: inout Shard, _ entryKey: EntryKey, digest: String, nowMs: Int64) -> ImmediateAdmission {
        expire(&shard, nowMs: nowMs)
        switch shard.entries[entryKey] {
        case .done(let answer) where answer.atMs > nowMs - EngineLimits.idempotencyWindowMs:
            if let bound = answer.requestDigest, bound != digest { return .decided(.mismatch) }
            return .decided(.replay(answer))
        case .inFlight(_, let running):
            return running == digest ? .firstStillRunning : .decided(.mismatch)
        case .done(let answer):
            remove(&shard, entryKey, answer: answer)
            fallthrough
        case nil:
            shard.entries[entryKey] = .inFlight([], digest: digest)
            return .decided(.proceed(IdempotencyClaim(user: entryKey.user, key: entryKey.key, requestDigest: digest)))
        }
    }

    /// Stores `answer` (nil: the request failed in a way worth retrying, 5xx, and nothing is
    /// stored) and hands it to the repeats waiting on `claim`.
    public func finish(_ claim: IdempotencyClaim, answer: IdempotentAnswer?) {
        let entryKey = EntryKey(user: claim.user, key: claim.key)
        let waiters = shard(entryKey).withLock { shard -> [Waiter] in
            guard case .inFlight(let waiters, _) = shard.entries[entryKey] else { return [] }
            if let answer {
                insert(&shard, entryKey, answer: answer)
            } else {
                shard.entries[entryKey] = nil
            }
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: .answered(answer)) }
    }

    /// Loads answers read back from the journal (oldest first), dropping expired ones.
    public func restore(_ answers: [IdempotentAnswer], nowMs: Int64) {
        for answer in answers where answer.atMs > nowMs - EngineLimits.idempotencyWindowMs {
            let entryKey = EntryKey(user: answer.user, key: answer.key)
            shard(entryKey).withLock { shard in
                if case .done(let old) = shard.entries[entryKey] { remove(&shard, entryKey, answer: old) }
                insert(&shard, entryKey, answer: answer)
            }
        }
    }

    /// Answers held now.
    public var entryCount: Int {
        var count = 0
        for shard in shards { count += shard.withLock { $0.doneCount } }
        return count
    }

    /// Bytes of answers held now, as the bound counts them.
    public var accountedBytes: Int {
        var bytes = 0
        for shard in shards { bytes += shard.withLock { $0.bytes } }
        return bytes
    }

    // MARK: Shard bookkeeping (under the shard's lock)

    private func insert(_ shard: inout Shard, _ entryKey: EntryKey, answer: IdempotentAnswer) {
        shard.entries[entryKey] = .done(answer)
        shard.order.append((entryKey, answer.atMs))
        shard.doneCount += 1
        shard.bytes += answer.accountedBytes
        while shard.doneCount > shardEntriesMax || shard.bytes > shardBytesMax, dropOldest(&shard) {}
    }

    private func remove(_ shard: inout Shard, _ entryKey: EntryKey, answer: IdempotentAnswer) {
        shard.entries[entryKey] = nil
        shard.doneCount -= 1
        shard.bytes -= answer.accountedBytes
    }

    private func expire(_ shard: inout Shard, nowMs: Int64) {
        while shard.head < shard.order.count, shard.order[shard.head].atMs <= nowMs - EngineLimits.idempotencyWindowMs, dropOldest(&shard) {}
    }

    /// Drops the oldest stored answer (skipping queue slots whose answer is already gone);
    /// false when none is left.
    private func dropOldest(_ shard: inout Shard) -> Bool {
        while shard.head < shard.order.count {
            let (entryKey, atMs) = shard.order[shard.head]
            shard.head += 1
            if case .done(let answer) = shard.entries[entryKey], answer.atMs == atMs {
                remove(&shard, entryKey, answer: answer)
                compact(&shard)
                return true
            }
        }
        compact(&shard)
        return false
    }

    private func compact(_ shard: inout Shard) {
        if shard.head == shard.order.count {
            shard.order.removeAll(keepingCapacity: true)
            shard.head = 0
        } else if shard.head >= 1_024 && shard.head * 2 >= shard.order.count {
            shard.order.removeFirst(shard.head)
            shard.head = 0
        }
    }
}
