// The durable journal: every change a shard decides, and every pause, is written to one SQLite
// database (WAL) by one dedicated writer thread, in ticket order, in group commits.
//
// It owns the database file under the data directory and the writer thread. It must never
// block the caller of `append` on I/O (shards call it inside their actors), never run the
// writer on the Swift cooperative pool (it blocks on fsync), never drop a record it was given,
// and never report a ticket durable before its transaction has committed.

import Dispatch
import Foundation
import InventoryActor
import Logging
import Synchronization

/// One thing the journal makes durable.
public enum JournalRecord: Sendable, Equatable {
    /// A change decided by a shard.
    case inventory(InventoryChange)
    /// An event was paused (`paused: true`) or resumed (`paused: false`) by ops.
    case paused(event: String, paused: Bool)
    /// The first answer to a request carrying an `Idempotency-Key`, replayed to its retries.
    case idempotentAnswer(IdempotentAnswer)
    /// The nonce of an accepted payment notification, remembered until `untilSeconds`.
    case nonce(String, untilSeconds: Int64)
    /// A webhook receiver has every change up to `through` (its delivery cursor).
    case webhookDelivered(url: String, through: Int64)
    /// A webhook delivery was given up and parked.
    case webhookParked(ParkedDelivery)
    /// Change events older than `beforeMs` may go, oldest first: whole rows of the change log
    /// (a row goes when all its events are older), at most `limit` events (at least one row) in
    /// this record's transaction, so pruning a long backlog never makes one commit long.
    case pruneChanges(beforeMs: Int64, limit: Int)
    /// An event created through the admin API: its id and the request body that defines it,
    /// read again at recovery with `atMs` as "now" (so relative times mean what they meant).
    case adminEvent(id: String, body: [UInt8], atMs: Int64)
    /// An event edited through the admin API: its whole definition after the edit (an
    /// `events[]` entry as JSON, absolute times), replacing the one before (in the journal
    /// too: only an event's latest edit is kept) and the configured one at recovery.
    case adminEventEdit(id: String, body: [UInt8], atMs: Int64)
    /// A coupon batch created through the admin API: its id and the request body that defines
    /// it, read again at recovery with `atMs` as "now".
    case adminCoupon(id: String, body: [UInt8], atMs: Int64)
    /// An event retired at `atMs`: its orders and groups left memory and stay in storage only;
    /// recovery loads them no more.
    case retireEvent(RetiredPart, atMs: Int64)
    /// A coupon batch retired at `atMs` with `issued` coupons: they left memory and stay in
    /// storage only; recovery loads them no more.
    case retireCouponBatch(String, issued: Int64, atMs: Int64)
}

/// Why a journal wait failed.
public enum JournalError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The journal cannot write durably now (disk full, I/O error); the message says why.
    ///
    /// The engine answers `503 unavailable`. The record is never written: a failed commit drops
    /// its batch and everything queued behind it (fail-stop), and the engine rebuilds its state
    /// from what the database holds before it serves again.
    case unavailable(String)
    /// The journal is closed; nothing more will become durable.
    case closed

    /// The message for a person (what the engine puts in its 503 body).
    public var description: String {
        switch self {
        case .unavailable(let message): message
        case .closed: "journal closed"
        }
    }
}

/// Told after every commit (and after a failure or the close) that tickets may have been
/// decided: the engine's per-event-loop answer queues, which then look at `Journal.outcome(of:)`.
///
/// Called on the writer thread: it must be quick and never block (an atomic exchange, at most
/// one enqueue onto an event loop).
public protocol JournalListener: AnyObject, Sendable {
    /// Some tickets may have become durable, or failed.
    func journalAdvanced()
}

/// SQLite's `synchronous` setting for the journal.
public enum JournalSynchronous: String, Sendable {
    /// fsync the WAL on every commit: an acknowledged change survives power loss.
    case full
    /// fsync only at checkpoints: survives a process crash, not a power loss. Faster.
    case normal
}

/// The durable journal: buffers changes without blocking, commits them in groups on its own
/// thread, and tells waiters when their ticket is durable.
///
/// Tickets are assigned in `append` order (starting at 1) and committed in that order, so a
/// durable ticket means every smaller ticket is durable too. Call `close()` before dropping
/// it: the writer thread holds the journal until then.
///
/// Cost, for benchmarks against `DiscardingChangeSink`: `append` is one mutex-guarded array
/// append (a semaphore signal only when the writer sleeps); `waitDurable` is an atomic load when
/// already durable, else one continuation. The writer binds prepared statements (no SQL text
/// per record) and commits up to `batchMax` records per fsync; `commitCount` and
/// `recordsCommitted` show how well commits group.
public final class Journal: ChangeSink, Sendable {
    /// The database file's name inside the data directory.
    public static let databaseFileName = "flashsale.db"
    /// How long one commit may run before new writes are refused (`acceptsWrites` false): a
    /// disk that hangs is treated like one that fails, for admission, until the commit returns.
    public static let commitStallLimit: Duration = .seconds(2)
    /// Most dropped-ticket ranges remembered (one per failed commit): a daemon whose disk fails
    /// again and again for months must not grow. Past it the oldest is forgotten, which is safe:
    /// a ticket is held only by a request inside the engine's gate, and the rebuild drains the
    /// gate before `resume()`, so nobody waits on a ticket of an old failure any more.
    static let droppedRangesMax = 64
    /// Most batch slots allocated up front, whatever `batchMax` says: a huge limit must not cost memory.
    static let batchCapacityReservedMax = 65_536
    /// Shortest time between the starts of two commits while records keep coming (group
    /// commit): when records arrived while the last commit ran, the next one waits out the
    /// rest of this, gathering what arrives meanwhile into the same transaction. A fast fsync
    /// otherwise commits a handful of records at a time, and a commit's fixed cost (pages
    /// written, fsync, wake-ups) then dominates each order's CPU. A journal that is not busy
    /// (nothing arrived during the last commit: a trickle, one client at a time) commits its
    /// next record at once.
    static let groupCommitWindow: Duration = .microseconds(1_000)

    private let state: Mutex<State>
    /// Wakes the writer: signalled by `append` only when the writer said it sleeps, and by `close`.
    private let wake = DispatchSemaphore(value: 0)
    /// The store, handed from `init` to the writer thread, which takes it out once.
    private let handoff: Mutex<JournalStore?>
    private let healthy = Atomic<Bool>(true)
    private let durable = Atomic<UInt64>(0)
    /// The highest ticket ever dropped by a failed commit (0: none): a ticket above it and at or
    /// below `durable` is durable without taking the lock.
    private let droppedThrough = Atomic<UInt64>(0)
    /// When the commit in progress started (`DispatchTime` ns), 0 when none runs.
    private let commitStartedNs = Atomic<UInt64>(0)
    private let checkpointSeqValue: Atomic<Int64>
    private let commits = Atomic<Int>(0)
    private let committedRecords = Atomic<Int>(0)
    /// Set once the writer has stopped taking records (nothing more becomes durable).
    private let closedFlag = Atomic<Bool>(false)
    /// Told after every commit, failure and the close (`addListener`).
    private let listeners = Mutex<[any JournalListener]>([])
    /// The commit observer, boxed: a closure stored directly in the `Mutex` would be wrapped in
    /// one more reabstraction thunk at every read (see `CommitObserver`).
    private let commitObserver = Mutex<CommitObserver?>(nil)
    private let batchMax: Int
    private let logger: Logger
    /// The data directory (what `recover(directory:)` reads back).
    public let directory: String
    /// What renders the change feed this journal writes, if it writes one.
    public let feed: (any ChangeFeedRenderer)?

    /// Opens (creating if needed) `<directory>/flashsale.db` in WAL mode with the schema, and
    /// starts the writer thread.
    ///
    /// `batchMax` bounds the records in one transaction (at least 1).
    /// With a `feed`, every change is also written as the feed's events, in its transaction.
    public convenience init(
        directory: String, synchronous: JournalSynchronous, batchMax: Int, logger: Logger, feed: (any ChangeFeedRenderer)? = nil
    ) throws {
        try self.init(directory: directory, synchronous: synchronous, batchMax: batchMax, logger: logger, feed: feed, faultInjector: nil)
    }

    /// As the public initializer, plus `faultInjector`, consulted before every COMMIT: a non-nil
    /// error fails that commit as if the disk had (for tests).
    init(
        directory: String, synchronous: JournalSynchronous, batchMax: Int, logger: Logger, feed: (any ChangeFeedRenderer)? = nil,
        faultInjector: (@Sendable () -> SQLiteError?)?
    ) throws {
        precondition(batchMax >= 1, "journal batchMax below 1")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let store = try JournalStore(
            path: Self.databasePath(directory), synchronous: synchronous, feed: feed, faultInjector: faultInjector)
        self.checkpointSeqValue = Atomic(try store.storedCheckpointSeq())
        self.handoff = Mutex(store)
        self.state = Mutex(State())
        self.directory = directory
        self.feed = feed
        self.batchMax = batchMax
        var logger = logger
        logger[metadataKey: "journal"] = "\(directory)"
        self.logger = logger
        let thread = Thread { [self] in self.runWriter() }
        thread.name = "flashsale-journal"
        thread.start()
    }

    static func databasePath(_ directory: String) -> String {
        directory.hasSuffix("/") ? directory + databaseFileName : directory + "/" + databaseFileName
    }

    // MARK: Appending and waiting

    /// Buffers a shard's change; its ticket (`ChangeSink`).
    public func record(_ change: InventoryChange) -> UInt64 {
        append(.inventory(change))
    }

    /// Buffers a shard's change with the engine's record attached (a `JournalRecord`, e.g. the
    /// idempotent answer to the request that made the change), as one unit (`ChangeSink`).
    public func record(_ change: InventoryChange, attachment: any Sendable) -> UInt64 {
        guard let attached = attachment as? JournalRecord else { return append(.inventory(change)) }
        return append(contentsOf: [.inventory(change), attached])
    }

    /// Buffers a shard's changes as one unit, committed in one transaction; the last ticket (`ChangeSink`).
    public func recordUnit(_ changes: [InventoryChange]) -> UInt64 {
        append(contentsOf: changes.map { .inventory($0) })
    }

    /// Buffers `record` and returns its ticket (1, 2, ...); never blocks on I/O.
    ///
    /// After `close()` has finished the record is not kept, and waiting on its ticket throws `.closed`.
    public func append(_ record: JournalRecord) -> UInt64 {
        append(contentsOf: [record])
    }

    /// Buffers `records` as one unit: the writer never splits a unit across transactions, so
    /// after a crash either all of them are on disk or none. Returns the last ticket (0 if empty).
    public func append(contentsOf records: [JournalRecord]) -> UInt64 {
        guard !records.isEmpty else { return 0 }
        let (ticket, wakeWriter) = state.withLock { state -> (UInt64, Bool) in
            state.lastTicket += UInt64(records.count)
            // Closed, or failed: the records are dropped and their waiters answered `.unavailable`.
            guard !state.stopped, state.failure == nil else {
                // Nothing is queued while failed: the writer counts these tickets as taken.
                if !state.stopped { state.takenTicket = state.lastTicket }
                return (state.lastTicket, false)
            }
            state.pending.append(unit: records)
            let wakeWriter = state.writerSleeping
            state.writerSleeping = false
            return (state.lastTicket, wakeWriter)
        }
        if wakeWriter { wake.signal() }
        return ticket
    }

    /// Returns once every record up to `ticket` is committed; ticket 0 returns at once.
    ///
    /// Throws `.unavailable` for a ticket a failed commit dropped (at once, and forever: it is
    /// never written), and for any ticket not yet durable while the journal is failed;
    /// `.closed` once the journal is closed. Not cancellable: a commit in flight cannot be
    /// taken back.
    public func waitDurable(_ ticket: UInt64) async throws(JournalError) {
        if ticket <= durable.load(ordering: .acquiring) && ticket > droppedThrough.load(ordering: .acquiring) { return }
        let result = await withCheckedContinuation { (continuation: Waiter) in
            let early = state.withLock { state -> Result<Void, JournalError>? in
                if let decided = state.outcome(of: ticket) { return decided }
                state.waiters.insert(ticket: ticket, continuation)
                return nil
            }
            if let early { continuation.resume(returning: early) }
        }
        try result.get()
    }

    /// Whether `ticket` is decided: nil while it may still commit; `.success` once it is
    /// durable (ticket 0 at once); `.failure` if it never will be (dropped by a failed commit,
    /// or the journal closed first). Lock-free for a durable ticket.
    public func outcome(of ticket: UInt64) -> Result<Void, JournalError>? {
        if ticket <= durable.load(ordering: .acquiring) && ticket > droppedThrough.load(ordering: .acquiring) { return .success(()) }
        return state.withLock { $0.outcome(of: ticket) }
    }

    /// Whether `ticket` may be decided now (lock-free; sequentially consistent, to pair with a
    /// `JournalListener`'s arming): false means `outcome(of:)` would say nil, and a listener
    /// will be told when that changes.
    public func mayBeDecided(_ ticket: UInt64) -> Bool {
        ticket <= durable.load(ordering: .sequentiallyConsistent) || !healthy.load(ordering: .sequentiallyConsistent)
            || ticket <= droppedThrough.load(ordering: .sequentiallyConsistent) || closedFlag.load(ordering: .sequentiallyConsistent)
    }

    /// Tells `listener` after every commit, failure and the close from now on.
    public func addListener(_ listener: any JournalListener) {
        listeners.withLock { $0.append(listener) }
    }

    /// Tells every listener that tickets may have been decided.
    private func notifyListeners() {
        for listener in listeners.withLock({ $0 }) { listener.journalAdvanced() }
    }

    /// False from a failed commit until `resume()`: the engine answers `503 unavailable`.
    public var isHealthy: Bool { healthy.load(ordering: .acquiring) }

    /// Whether a new change may be made now: healthy, and no commit has run longer than
    /// `commitStallLimit`. The engine checks it before a request changes memory.
    public var acceptsWrites: Bool {
        guard healthy.load(ordering: .acquiring) else { return false }
        let started = commitStartedNs.load(ordering: .acquiring)
        guard started != 0 else { return true }
        let now = DispatchTime.now().uptimeNanoseconds
        return now < started || now - started <= UInt64(Self.commitStallLimit.components.seconds) * 1_000_000_000
    }

    /// Why `acceptsWrites` is false, for the 503 body.
    public var refusalReason: String {
        healthy.load(ordering: .acquiring) ? "a journal commit has stalled past \(Self.commitStallLimit)" : "journal writes are failing"
    }

    // MARK: Failure and resumption (fail-stop)

    /// Returns once a commit has failed (at once if the journal is failed now); false if the
    /// journal closed or the task was cancelled first. The engine then rebuilds its state and
    /// calls `resume()`.
    public func failed() async -> Bool {
        let id = state.withLock { state in
            state.nextWatcherID += 1
            return state.nextWatcherID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let early = state.withLock { state -> Bool? in
                    if state.failure != nil { return true }
                    if state.stopped || state.finished || Task.isCancelled { return false }
                    state.failureWatchers[id] = continuation
                    return nil
                }
                if let early { continuation.resume(returning: early) }
            }
        } onCancel: {
            state.withLock { $0.failureWatchers.removeValue(forKey: id) }?.resume(returning: false)
        }
    }

    /// Writes a probe transaction (while failed: the disk works again only once one commits).
    public func probe() async throws(JournalError) {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, JournalError>, Never>) in
            let (early, wakeWriter) = state.withLock { state -> (Result<Void, JournalError>?, Bool) in
                if state.stopped || state.closing { return (.failure(.closed), false) }
                state.probes.append(continuation)
                let wakeWriter = state.writerSleeping
                state.writerSleeping = false
                return (nil, wakeWriter)
            }
            if let early { continuation.resume(returning: early) }
            if wakeWriter { wake.signal() }
        }
        try result.get()
    }

    /// Ends a failure: every ticket handed out so far that is not durable stays dropped, and
    /// new records are kept and committed again. Call it once the engine's state is rebuilt
    /// from the database and nothing has changed it since (the engine's gate is closed).
    public func resume() {
        let resumed = state.withLock { state -> Bool in
            guard let from = state.droppedFrom else { return false }
            if from <= state.lastTicket { state.dropped.append(from...state.lastTicket) }
            if state.dropped.count > Self.droppedRangesMax { state.dropped.removeFirst(state.dropped.count - Self.droppedRangesMax) }
            state.takenTicket = state.lastTicket
            droppedThrough.store(state.lastTicket, ordering: .releasing)
            state.droppedFrom = nil
            state.failure = nil
            healthy.store(true, ordering: .releasing)
            return true
        }
        if resumed { logger.notice("journal resumed", metadata: ["ticket": "\(state.withLock { $0.lastTicket })"]) }
    }

    /// Dropped-ticket ranges remembered now (at most `droppedRangesMax`).
    var droppedRangeCount: Int { state.withLock { $0.dropped.count } }

    /// The last ticket handed out: once it is durable, so is every change made before this read.
    public var lastTicket: UInt64 { state.withLock { $0.lastTicket } }

    /// The highest ticket known durable.
    public var durableTicket: UInt64 { durable.load(ordering: .acquiring) }

    /// Transactions committed so far (records and checkpoints); with `recordsCommitted`, shows
    /// how well commits group.
    public var commitCount: Int { commits.load(ordering: .relaxed) }

    /// Records committed so far.
    public var recordsCommitted: Int { committedRecords.load(ordering: .relaxed) }

    /// Calls `observer` on the writer thread after every committed batch of records, with the
    /// batch's size and how long its transaction took (metrics). It must be quick and not block.
    public func setCommitObserver(_ observer: (@Sendable (_ records: Int, _ duration: Duration) -> Void)?) {
        let boxed = observer.map(CommitObserver.init)
        commitObserver.withLock { $0 = boxed }
    }

    // MARK: Checkpoints

    /// Once every record appended before this call is committed, replaces the stored ledger
    /// snapshot with `counters`, increments `checkpoint_seq` and truncates the WAL; returns the
    /// new `checkpoint_seq`.
    ///
    /// `atMs` is the caller's clock, for the log line.
    public func checkpoint(counters: [(LedgerKey, StockCounters)], atMs: Int64) async throws(JournalError) -> Int64 {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Int64, JournalError>, Never>) in
            let (early, wakeWriter) = state.withLock { state -> (Result<Int64, JournalError>?, Bool) in
                if state.stopped || state.closing { return (.failure(.closed), false) }
                if let failure = state.failure { return (.failure(.unavailable(failure)), false) }
                state.checkpoints.append(
                    CheckpointRequest(afterTicket: state.lastTicket, counters: counters, atMs: atMs, continuation: continuation))
                let wakeWriter = state.writerSleeping
                state.writerSleeping = false
                return (nil, wakeWriter)
            }
            if let early { continuation.resume(returning: early) }
            if wakeWriter { wake.signal() }
        }
        return try result.get()
    }

    /// The last `checkpoint_seq` written (as read at open, then as advanced by `checkpoint`).
    public var checkpointSeq: Int64 { checkpointSeqValue.load(ordering: .acquiring) }

    // MARK: Closing

    /// Commits everything buffered, stops the writer and closes the database.
    ///
    /// If a commit fails while closing, the records not yet durable are given up (their
    /// waiters were already told `.unavailable`, so none was acknowledged) and it is logged.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let finished = state.withLock { state -> Bool in
                if state.finished { return true }
                state.closing = true
                state.closeWaiters.append(continuation)
                return false
            }
            if finished { continuation.resume() } else { wake.signal() }
        }
    }
}

// MARK: - Writer thread

extension Journal {
    typealias Waiter = CheckedContinuation<Result<Void, JournalError>, Never>

    /// The commit observer in a class of its own, read out of the `Mutex` once per commit.
    ///
    /// Not the bare closure: reading a closure out of generic storage (`Mutex<Closure?>.withLock
    /// { $0 }`) round-trips it through the generic parameter, which wraps it in one more
    /// reabstraction thunk each time, so after N commits a call walked N thunks (CPU per commit
    /// grew without bound) and releasing the chain at exit recursed N deep (a crash after
    /// `stopped`). A class reference is copied as it is.
    final class CommitObserver: Sendable {
        let call: @Sendable (_ records: Int, _ duration: Duration) -> Void

        init(_ call: @escaping @Sendable (_ records: Int, _ duration: Duration) -> Void) {
            self.call = call
        }
    }

    /// A pending `checkpoint` call: runs once `afterTicket` is durable.
    struct CheckpointRequest {
        let afterTicket: UInt64
        let counters: [(LedgerKey, StockCounters)]
        let atMs: Int64
        let continuation: CheckedContinuation<Result<Int64, JournalError>, Never>
    }

    /// A `probe()` call waiting for the writer.
    typealias ProbeWaiter = CheckedContinuation<Result<Void, JournalError>, Never>

    /// Everything shared between appenders, waiters and the writer, under one mutex.
    struct State {
        /// The last ticket handed out.
        var lastTicket: UInt64 = 0
        /// The last ticket the writer has taken out of `pending` (committed or in its batch).
        var takenTicket: UInt64 = 0
        /// The last ticket committed.
        var durableTicket: UInt64 = 0
        /// Records `takenTicket + 1 ... lastTicket`, in ticket order.
        var pending = RecordQueue()
        /// Waiters for tickets above `durableTicket`, in ticket order.
        var waiters = WaiterQueue()
        /// Checkpoint calls not yet run, in call order.
        var checkpoints: [CheckpointRequest] = []
        /// Why the journal is failed; nil while healthy. Set by a failed commit, cleared by `resume()`.
        var failure: String?
        /// The last failure's message, kept for the answers to dropped tickets.
        var lastFailure: String?
        /// While failed: the first ticket dropped (everything from it on is dropped until `resume()`).
        var droppedFrom: UInt64?
        /// Ticket ranges dropped by earlier failures, oldest first (one per failure, at most
        /// `droppedRangesMax`).
        var dropped: [ClosedRange<UInt64>] = []
        /// `probe()` calls not yet run.
        var probes: [ProbeWaiter] = []
        /// `failed()` calls waiting for a failure, by id (so a cancelled one can leave).
        var failureWatchers: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextWatcherID = 0

        /// `ticket`'s fate as far as it is known: durable, never (dropped, or the journal
        /// stopped first), or nil while it may still commit.
        func outcome(of ticket: UInt64) -> Result<Void, JournalError>? {
            precondition(ticket <= lastTicket, "ticket \(ticket) was never issued")
            if isDropped(ticket) { return .failure(.unavailable(lastFailure ?? "journal commit failed")) }
            if ticket <= durableTicket { return .success(()) }
            if stopped || finished { return .failure(.closed) }
            if let failure { return .failure(.unavailable(failure)) }
            return nil
        }

        /// Whether a failed commit dropped `ticket` (it is never written).
        func isDropped(_ ticket: UInt64) -> Bool {
            if let droppedFrom, ticket >= droppedFrom { return true }
            return dropped.contains { $0.contains(ticket) }
        }
        /// Whether the writer is (about to be) blocked on `wake` with nothing to do.
        var writerSleeping = false
        /// `close()` was called: the writer drains `pending`, then stops.
        var closing = false
        /// The writer has stopped taking records; nothing appended from now on is kept.
        var stopped = false
        /// The database is closed and every waiter answered.
        var finished = false
        /// `close()` calls waiting for the writer to stop.
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// What the writer does next, decided under the lock.
    private enum Step {
        case work(checkpoints: [CheckpointRequest], probes: [ProbeWaiter])
        case sleep
        case stop
    }

    /// The writer thread's body: the loop, then closing the database, then answering `close()`.
    func runWriter() {
        var store = handoff.withLock { $0.take() }
        guard let open = store else { preconditionFailure("journal writer started twice") }
        writerLoop(store: open)
        // The last reference: finalizes the statements and closes the connection.
        store = nil
        finish()
    }

    /// Takes a batch, commits it, publishes; repeats; sleeps when idle; returns once stopped.
    private func writerLoop(store: JournalStore) {
        var batch: [JournalRecord] = []
        batch.reserveCapacity(min(batchMax, Self.batchCapacityReservedMax))
        var batchLastTicket: UInt64 = 0
        var lastCommitStarted: ContinuousClock.Instant?
        var resumable: [Waiter] = []

        while true {
            let step = state.withLock { state -> Step in
                // Top the batch up (after a failed commit it still holds the records to retry).
                let room = batchMax - batch.count
                if room > 0, state.takenTicket < state.lastTicket {
                    let taken = state.pending.take(upTo: room, into: &batch)
                    state.takenTicket += UInt64(taken)
                    batchLastTicket = state.takenTicket
                }
                var ready: [CheckpointRequest] = []
                let durableTicket = state.durableTicket
                if !state.checkpoints.isEmpty, state.checkpoints[0].afterTicket <= durableTicket {
                    let count = state.checkpoints.prefix { $0.afterTicket <= durableTicket }.count
                    ready = Array(state.checkpoints.prefix(count))
                    state.checkpoints.removeFirst(count)
                }
                let probes = state.probes
                state.probes.removeAll()
                if !batch.isEmpty || !ready.isEmpty || !probes.isEmpty { return .work(checkpoints: ready, probes: probes) }
                if state.closing {
                    state.stopped = true
                    return .stop
                }
                state.writerSleeping = true
                return .sleep
            }
            switch step {
            case .sleep:
                wake.wait()
                continue
            case .stop:
                return
            case .work(let checkpoints, let probes):
                for request in checkpoints { runCheckpoint(request, store: store) }
                for waiter in probes { runProbe(waiter, store: store) }
            }
            guard !batch.isEmpty else { continue }
            // Group commit: while busy, too soon after the last commit: wait out the window, then top up.
            if batch.count < batchMax, let last = lastCommitStarted {
                let due = last + Self.groupCommitWindow
                if ContinuousClock.now < due {
                    Thread.sleep(until: Date(timeIntervalSinceNow: Self.seconds(due - ContinuousClock.now)))
                    lastCommitStarted = nil
                    continue
                }
            }

            let commitStarted = ContinuousClock.now
            commitStartedNs.store(DispatchTime.now().uptimeNanoseconds, ordering: .releasing)
            do {
                try store.commit(batch[...])
                commitStartedNs.store(0, ordering: .releasing)
            } catch {
                commitStartedNs.store(0, ordering: .releasing)
                let closing = failStop(error, batchRecords: batch.count)
                batch.removeAll(keepingCapacity: true)
                if closing {
                    state.withLock { $0.stopped = true }
                    return
                }
                continue
            }
            commits.add(1, ordering: .relaxed)
            committedRecords.add(batch.count, ordering: .relaxed)
            if let observer = commitObserver.withLock({ $0 }) { observer.call(batch.count, ContinuousClock.now - commitStarted) }
            // Busy (records arrived while this one committed): the next commit keeps the
            // window. A trickle (nothing arrived) commits its next record at once.
            let busy = publish(durableTicket: batchLastTicket, into: &resumable)
            lastCommitStarted = busy ? commitStarted : nil
            notifyListeners()
            for waiter in resumable { waiter.resume(returning: .success(())) }
            resumable.removeAll(keepingCapacity: true)
            batch.removeAll(keepingCapacity: true)
        }
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        TimeInterval(duration.components.seconds) + TimeInterval(duration.components.attoseconds) / 1e18
    }

    /// Marks `durableTicket` committed; collects the waiters it satisfies. Returns whether
    /// records are already waiting for the next commit.
    private func publish(durableTicket: UInt64, into resumable: inout [Waiter]) -> Bool {
        state.withLock { state in
            state.durableTicket = durableTicket
            durable.store(durableTicket, ordering: .sequentiallyConsistent)
            state.waiters.pop(through: durableTicket, into: &resumable)
            return state.takenTicket < state.lastTicket
        }
    }

    /// Fail-stop after a failed commit (rolled back: nothing of it is on disk): drops the
    /// failed batch and every record queued behind it, answers every waiter and pending
    /// checkpoint `.unavailable`, and drops everything appended until `resume()`. Wakes the
    /// `failed()` callers (the engine, which rebuilds its state from the database). Returns
    /// whether the journal is closing (the writer stops then).
    private func failStop(_ error: SQLiteError, batchRecords: Int) -> Bool {
        let message = "journal commit failed: \(error)"
        var failed: [Waiter] = []
        let (closing, checkpoints, watchers, droppedRecords) = state.withLock { state in
            let droppedRecords = batchRecords + state.pending.count
            state.failure = message
            state.lastFailure = message
            if state.droppedFrom == nil { state.droppedFrom = state.durableTicket + 1 }
            healthy.store(false, ordering: .sequentiallyConsistent)
            state.pending.removeAll()
            state.takenTicket = state.lastTicket
            state.waiters.removeAll(into: &failed)
            let checkpoints = state.checkpoints
            state.checkpoints.removeAll()
            let watchers = state.failureWatchers
            state.failureWatchers.removeAll()
            return (state.closing, checkpoints, watchers, droppedRecords)
        }
        notifyListeners()
        for waiter in failed { waiter.resume(returning: .failure(.unavailable(message))) }
        for request in checkpoints { request.continuation.resume(returning: .failure(.unavailable(message))) }
        logger.error(
            closing ? "journal commit failed while closing; records not durable dropped" : "journal commit failed; records dropped, answering unavailable until the state is rebuilt",
            metadata: ["error": "\(error)", "records_dropped": "\(droppedRecords)"])
        for watcher in watchers.values { watcher.resume(returning: true) }
        return closing
    }

    /// Writes one probe transaction and answers its caller.
    private func runProbe(_ waiter: ProbeWaiter, store: JournalStore) {
        do {
            try store.probe()
            waiter.resume(returning: .success(()))
        } catch {
            waiter.resume(returning: .failure(.unavailable("journal probe write failed: \(error)")))
        }
    }

    /// Writes one checkpoint and truncates the WAL, then answers its caller.
    private func runCheckpoint(_ request: CheckpointRequest, store: JournalStore) {
        let seq = checkpointSeqValue.load(ordering: .acquiring) + 1
        do {
            try store.writeCheckpoint(request.counters, seq: seq)
        } catch {
            logger.error("checkpoint failed", metadata: ["error": "\(error)"])
            request.continuation.resume(returning: .failure(.unavailable("checkpoint failed: \(error)")))
            return
        }
        commits.add(1, ordering: .relaxed)
        checkpointSeqValue.store(seq, ordering: .releasing)
        do {
            if try !store.truncateWAL() {
                logger.debug("WAL not fully truncated: a reader holds it", metadata: ["checkpoint_seq": "\(seq)"])
            }
        } catch {
            // The snapshot is committed; a WAL that stays long costs space, not correctness.
            logger.warning("WAL truncate failed", metadata: ["error": "\(error)"])
        }
        logger.debug("checkpoint written", metadata: ["checkpoint_seq": "\(seq)", "at_ms": "\(request.atMs)"])
        request.continuation.resume(returning: .success(seq))
    }

    /// After the database is closed: fails whatever still waits with `.closed`, wakes `close()` callers.
    private func finish() {
        var failed: [Waiter] = []
        let (checkpoints, closeWaiters, probes, watchers) = state.withLock { state in
            state.finished = true
            closedFlag.store(true, ordering: .sequentiallyConsistent)
            state.waiters.removeAll(into: &failed)
            state.pending.removeAll()
            let checkpoints = state.checkpoints
            state.checkpoints.removeAll()
            let closeWaiters = state.closeWaiters
            state.closeWaiters.removeAll()
            let probes = state.probes
            state.probes.removeAll()
            let watchers = state.failureWatchers
            state.failureWatchers.removeAll()
            return (checkpoints, closeWaiters, probes, watchers)
        }
        notifyListeners()
        for waiter in failed { waiter.resume(returning: .failure(.closed)) }
        for probe in probes { probe.resume(returning: .failure(.closed)) }
        for watcher in watchers.values { watcher.resume(returning: false) }
        for request in checkpoints { request.continuation.resume(returning: .failure(.closed)) }
        for waiter in closeWaiters { waiter.resume() }
    }
}

// MARK: - Queues

/// Records waiting for the writer, in ticket order; taking from the front is O(taken).
///
/// Records appended together form a unit that is taken whole, so a transaction never holds
/// part of one (a batch may pass `limit` by the rest of its last unit).
struct RecordQueue {
    private var records: [JournalRecord] = []
    /// Parallel to `records`: whether the next record belongs to the same unit.
    private var continues: [Bool] = []
    private var head = 0

    /// Records not yet taken.
    var count: Int { records.count - head }

    /// Adds a unit of records at the back.
    mutating func append(unit: [JournalRecord]) {
        records.append(contentsOf: unit)
        for index in unit.indices { continues.append(index < unit.count - 1) }
    }

    /// Moves up to `limit` records from the front into `batch`, completing the last unit
    /// taken; returns how many.
    mutating func take(upTo limit: Int, into batch: inout [JournalRecord]) -> Int {
        var end = head + min(limit, count)
        while end > head && end < records.count && continues[end - 1] { end += 1 }
        let taken = end - head
        batch.append(contentsOf: records[head..<end])
        head = end
        compact()
        return taken
    }

    /// Drops every record.
    mutating func removeAll() {
        records.removeAll()
        continues.removeAll()
        head = 0
    }

    private mutating func compact() {
        if head == records.count {
            records.removeAll(keepingCapacity: true)
            continues.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 4_096 && head * 2 >= records.count {
            records.removeFirst(head)
            continues.removeFirst(head)
            head = 0
        }
    }
}

/// Waiters ordered by ticket; resuming the N satisfied by a commit is O(N).
///
/// Waiters arrive nearly in ticket order, so insertion is an append but for the rare
/// out-of-order one (a binary-search insert).
struct WaiterQueue {
    private var entries: [(ticket: UInt64, waiter: Journal.Waiter)] = []
    private var head = 0

    /// Adds a waiter for `ticket`, keeping ticket order.
    mutating func insert(ticket: UInt64, _ waiter: Journal.Waiter) {
        guard let last = entries.last, head < entries.count, last.ticket > ticket else {
            entries.append((ticket, waiter))
            return
        }
        var low = head
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].ticket <= ticket { low = middle + 1 } else { high = middle }
        }
        entries.insert((ticket, waiter), at: low)
    }

    /// Moves every waiter for a ticket at or below `ticket` into `out`.
    mutating func pop(through ticket: UInt64, into out: inout [Journal.Waiter]) {
        while head < entries.count, entries[head].ticket <= ticket {
            out.append(entries[head].waiter)
            head += 1
        }
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1_024 && head * 2 >= entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }

    /// Moves every waiter into `out`.
    mutating func removeAll(into out: inout [Journal.Waiter]) {
        pop(through: .max, into: &out)
    }
}
