import FlashSaleJournal
import InventoryActor
import NIOPosix

/// The change feed as the engine serves it (§6, §7): reads of the journal's feed and
/// orders, run on NIO's blocking-I/O thread pool (never on an event loop), and the pruning of
/// changes past their retention.
extension SaleEngine {
    /// What a read answers when the journal is off or the database cannot be read.
    static let feedUnavailable = Rejection.unavailable("the change feed needs the journal")

    /// Up to `limit` changes with an id above `after`, in id order, read on `pool` (NIO's
    /// shared blocking pool unless given one).
    public func changes(after: Int64, limit: Int, on pool: NIOThreadPool = .singleton) async -> Result<[StoredChange], Rejection> {
        await read(on: pool) { try $0.changes(after: after, limit: limit) }
    }

    /// How many changes have an id above `after` (a receiver's backlog).
    public func changesPending(after: Int64) async -> Result<Int, Rejection> {
        await read { try $0.count(after: after) }
    }

    /// A page of orders as stored (durable), for the admin listing and the export.
    public func storedOrders(
        event: String?, status: OrderStatus?, sinceMs: Int64 = .min, after: OrderID?, limit: Int
    ) async -> Result<[StoredOrder], Rejection> {
        await read { try $0.orders(event: event, status: status, sinceMs: sinceMs, after: after, limit: limit) }
    }

    /// Appends a prune of changes older than the retention, at most `limit` of them: the
    /// journal deletes them in the next batch's transaction.
    public func pruneChanges(limit: Int = EngineLimits.changesPrunedPerRecordMax) {
        guard let journal, journal.acceptsWrites else { return }
        _ = journal.append(.pruneChanges(beforeMs: clock.nowMs() - feedRetentionMs, limit: limit))
    }

    private func read<T: Sendable>(
        on pool: NIOThreadPool = .singleton, _ body: @escaping @Sendable (JournalReader) throws -> T
    ) async -> Result<T, Rejection> {
        guard let reader else { return .failure(Self.feedUnavailable) }
        do {
            return .success(try await pool.runIfActive { try body(reader) })
        } catch {
            logger.error("change feed read failed", metadata: ["error": "\(error)"])
            return .failure(.unavailable("cannot read the journal: \(error)"))
        }
    }
}
