import Synchronization

/// One "sold out" flag per ledger that the owning shard publishes after each change, so that
/// a flood of claims on a sold-out SKU is answered without queueing on the shard.
///
/// The shard stays the authority: it stores `available == 0` after every change it makes to a
/// ledger, inside its own isolation, so a flag that reads true was true at that instant (and
/// `sold_out` is then the right answer for any qty ≥ 1). A ledger the table does not know reads
/// false, which only sends the claim to the shard. The set of ledgers is fixed at creation, so
/// lookups take no lock; each flag is one atomic.
public final class SoldOutHints: Sendable {
    private final class Flag: Sendable {
        let soldOut = Atomic<Bool>(false)
    }

    private let flags: [LedgerKey: Flag]

    /// Flags for `keys`, all clear until their shard publishes.
    public init(keys: [LedgerKey]) {
        var flags: [LedgerKey: Flag] = [:]
        for key in keys { flags[key] = Flag() }
        self.flags = flags
    }

    /// Whether `key`'s shard last published `available == 0`: certainly sold out now.
    public func isSoldOut(_ key: LedgerKey) -> Bool {
        flags[key]?.soldOut.load(ordering: .acquiring) ?? false
    }

    /// Called by the owning shard after a change to `key`'s counters.
    func publish(_ key: LedgerKey, available: Int64) {
        flags[key]?.soldOut.store(available == 0, ordering: .releasing)
    }

    /// Traps unless `key`'s flag matches `available` (the shard's invariant check).
    func verify(_ key: LedgerKey, available: Int64) {
        guard let flag = flags[key] else { return }
        precondition(flag.soldOut.load(ordering: .acquiring) == (available == 0), "sold-out hint of \(key) stale: available \(available)")
    }
}
