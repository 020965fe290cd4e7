import FlashSaleJournal
import InventoryActor
import NIOCore
import NIOPosix
import Synchronization

/// The retired events and those retiring now.
struct Retirement: Sendable {
    /// Retired events: what stays known of each (final counters, groups formed).
    var retired: [String: RetiredEvent] = [:]
    /// Events being taken out of memory now: edits, pauses and restocks of them are refused.
    var retiring: Set<String> = []
    /// Groups formed in every retired event (ops `STATS groups_formed` keeps counting them).
    var groupsFormed = 0
    /// Retired coupon batches: their coupons are in storage only.
    var batches: Set<String> = []
}

/// Retirement: an event ended longer ago than `memory.retention` leaves memory.
///
/// The daemon runs for months; every order, group and ledger of every past sale would otherwise
/// stay in memory for its life. Retiring an event takes them out of the shards (each shard in
/// one synchronous step) and records durably what must stay known: each ledger's final counters,
/// the groups it formed, the coupons its orders spent and the ids it used. Its orders and groups
/// stay in SQLite, where every read of them goes from then on (`GET /v1/orders/{id}`, ops
/// `ORDER`, `GET /v1/groups/{id}`; the admin listing and the export always read there), and a
/// restart loads only the events not retired.
///
/// A retired event can no longer change: it ended long ago, and its edits, pauses and restocks
/// are refused (`409 conflict`). A payment notification for one of its orders is decided against
/// the order as stored, one at a time (`payRetired`): the same answers as §3.7, except that a late
/// payment never takes stock again (its event's ledgers are closed) and becomes `refund_pending`.
extension SaleEngine {
    /// Retires every event ended at least `memory.retention` ago that has nothing left that can
    /// move (no pending order, no open group); returns the ids retired.
    @discardableResult
    public func retireEnded() async -> [String] {
        let nowMs = clock.nowMs()
        let due = catalog.events.map(\.config).filter { $0.endsAtMs <= nowMs - memoryRetentionMs }.map(\.id)
        var retiredNow: [String] = []
        for event in due where await retire(event: event) { retiredNow.append(event) }
        // A batch's coupons once none can be spent any more: claims closed and every coupon expired.
        let batches = couponBatches.withLock { Array($0.values) }
            .filter { $0.endsAtMs + $0.validForMs <= nowMs - memoryRetentionMs }.map(\.id).sorted()
        for batch in batches where await retire(batch: batch) { retiredNow.append(batch) }
        return retiredNow
    }

    /// Retires coupon batch `batch` if it can go now (no coupon of it held by a pending order); whether it did.
    func retire(batch: String) async -> Bool {
        // Claimed before the first await: a second pass finds it taken.
        guard retirement.withLock({ $0.batches.insert(batch).inserted }) else { return false }
        let shard = inventory.shard(forBatch: batch)
        guard journal?.acceptsWrites ?? true, let issued = await shard.couponsIssued(batch),
            let taken = await shard.retireCouponBatch(batch)
        else {
            retirement.withLock { _ = $0.batches.remove(batch) }
            return false
        }
        if let journal {
            let ticket = journal.append(.retireCouponBatch(batch, issued: issued, atMs: clock.nowMs()))
            if let failure = await durable(ticket) {
                logger.warning("retiring a coupon batch was not recorded", metadata: ["batch": "\(batch)", "error": "\(failure.message)"])
                return false
            }
        }
        logger.info("coupon batch retired: its coupons are in storage only", metadata: ["batch": "\(batch)", "coupons": "\(taken)"])
        return true
    }

    /// Retires `event` if it can go now; whether it did.
    func retire(event: String) async -> Bool {
        let claimed = retirement.withLock { state in
            guard state.retired[event] == nil, !state.retiring.contains(event) else { return false }
            state.retiring.insert(event)
            return true
        }
        guard claimed else { return false }
        defer { _ = retirement.withLock { $0.retiring.remove(event) } }
        // No admin edit of it runs meanwhile (an edit holds the same reservation as a create).
        guard creatingEvents.withLock({ $0.insert(event).inserted }) else { return false }
        defer { creatingEvents.withLock { _ = $0.remove(event) } }
        // Checked again under the reservation: an edit may have moved its end meanwhile.
        guard let config = catalog.event(event)?.config, config.endsAtMs <= clock.nowMs() - memoryRetentionMs else { return false }
        if let journal, !journal.acceptsWrites { return false }
        let part: RetiredPart
        switch await inventory.retire(event: event) {
        case .success(let taken): part = taken
        case .failure(let refusal):
            logger.debug("event not retired yet", metadata: ["event": "\(event)", "reason": "\(refusal)"])
            return false
        }
        let nowMs = clock.nowMs()
        let record = RetiredEvent(event: event, atMs: nowMs, orders: part.orders, groupsFormed: part.groupsFormed, counters: part.counters)
        // In memory first: from here every read of its orders goes to storage, which holds them
        // all (each change was journaled before this; reads wait for the journal to settle).
        retirement.withLock { state in
            state.retired[event] = record
            state.groupsFormed += part.groupsFormed
        }
        if let journal {
            let ticket = journal.append(.retireEvent(part, atMs: nowMs))
            // A failed commit rebuilds the state from storage, where the event is not retired:
            // it is loaded again whole and retires at a later pass.
            if let failure = await durable(ticket) {
                logger.warning("retiring an event was not recorded", metadata: ["event": "\(event)", "error": "\(failure.message)"])
                return false
            }
        }
        logger.info(
            "event retired: its orders and groups are in storage only",
            metadata: ["event": "\(event)", "orders": "\(part.orders)", "groups": "\(part.groups)"])
        return true
    }

    /// The retired event `event`; nil if it is not retired.
    public func retiredEvent(_ event: String) -> RetiredEvent? {
        retirement.withLock { $0.retired[event] }
    }

    /// The refusal for a change to `event` because it retired or is retiring; nil otherwise.
    func retiredRefusal(_ event: String) -> Rejection? {
        let retired = retirement.withLock { $0.retired[event] != nil || $0.retiring.contains(event) }
        return retired ? .conflict("the event '\(event)' has retired (ended more than memory.retention ago): it cannot change") : nil
    }

    /// Restores what the journal holds of retired events (recovery, before any ledger or order).
    func restoreRetired(_ state: RecoveredState) async {
        retirement.withLock { retirement in
            retirement = Retirement()
            for event in state.retiredEvents {
                retirement.retired[event.event] = event
                retirement.groupsFormed += event.groupsFormed
            }
            retirement.batches = Set(state.retiredBatches.map(\.batch))
        }
        await inventory.raiseFloors(state.floors)
    }

    // MARK: Reads of retired orders and groups

    /// Order `id` as stored, once every change made so far is durable (a read of a retired
    /// order); `unavailable` when storage cannot answer now, never "unknown" in its place.
    func storedOrder(_ id: OrderID) async -> Result<StoredOrder?, Rejection> {
        await storedRead { try $0.order(id) }
    }

    /// Group `id` as stored, with the member counts its final status implies: a retired group
    /// is formed (every member paid) or failed (no live member).
    func storedGroup(_ id: GroupID) async -> Result<GroupView?, Rejection> {
        await storedRead { try $0.group(id) }.map { stored in
            stored.map { group in
                let members = group.status == .formed ? Int(group.size) : 0
                return GroupView(group: group, members: members, paid: members)
            }
        }
    }

    /// `body` on the thread pool once every change made so far is durable.
    private func storedRead<T: Sendable>(_ body: @escaping @Sendable (JournalReader) throws -> T?) async -> Result<T?, Rejection> {
        if let failure = await settled() { return .failure(failure) }
        guard let reader else { return .success(nil) }
        do {
            return .success(try await NIOThreadPool.singleton.runIfActive { try body(reader) })
        } catch {
            logger.error("reading a retired order or group failed", metadata: ["error": "\(error)"])
            return .failure(.unavailable("cannot read the journal: \(error)"))
        }
    }

    // MARK: Payments of retired orders

    /// A verified payment notification for an order of a retired event, decided against the
    /// order as stored; one at a time, so two notifications of one order see each other.
    func payRetired(_ id: OrderID, transaction: String, amountFen: Int64, nowMs: Int64) async -> Result<Recorded<PaymentResult>, Rejection> {
        await retiredPayments.run {
            let stored: StoredOrder
            switch await self.storedOrder(id) {
            case .success(let found?): stored = found
            case .success(nil): return .success(Recorded(result: .unknownOrder, ticket: 0))
            case .failure(let failure): return .failure(failure)
            }
            let decided = OrderBook.payRetired(
                stored.order, refunds: stored.refunds, transaction: transaction, amountFen: amountFen, nowMs: nowMs)
            guard let change = decided.change, let journal = self.journal else { return .success(Recorded(result: decided.result, ticket: 0)) }
            let ticket = journal.append(.inventory(change))
            // Wait here, inside the turn: the next notification reads what this one wrote.
            if let failure = await self.durable(ticket) { return .failure(failure) }
            return .success(Recorded(result: decided.result, ticket: ticket))
        }
    }
}

/// Runs async bodies one at a time, in arrival order (an actor alone would interleave them at
/// each `await`). Those waiting are requests in flight, so the HTTP server's in-flight cap
/// bounds them.
final class TurnTaking: Sendable {
    private struct State {
        var busy = false
        /// Waiting bodies from `head` on: taken in O(1), the taken ones dropped in bulk.
        var waiting: [CheckedContinuation<Void, Never>] = []
        var head = 0

        /// The next body to run, if any; marks the turn free otherwise.
        mutating func next() -> CheckedContinuation<Void, Never>? {
            guard head < waiting.count else {
                busy = false
                waiting.removeAll()
                head = 0
                return nil
            }
            defer {
                head += 1
                if head >= 64 && head * 2 >= waiting.count {
                    waiting.removeFirst(head)
                    head = 0
                }
            }
            return waiting[head]
        }
    }
    private let state = Mutex(State())

    /// Runs `body` once every body before it has finished.
    func run<T: Sendable>(_ body: @Sendable () async -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.busy {
                    state.waiting.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if now { continuation.resume() }
        }
        defer { state.withLock { $0.next() }?.resume() }
        return await body()
    }
}
