// Reading the journal back at start: what the state tables hold, as the engine restores it.
// Reads only; it never writes to the database (beyond SQLite's own WAL recovery).

import CSQLite
import Foundation
import InventoryActor
import Synchronization

/// What the journal holds on disk: everything acknowledged before the last stop or crash.
public struct RecoveredState: Sendable {
    /// Every order of an event not retired, as last recorded, in id order within each event.
    public var orders: [Order]
    /// The net stock delta of every restocked ledger.
    public var restocks: [(LedgerKey, Int64)]
    /// Events paused by ops and not resumed.
    public var pausedEvents: Set<String>
    /// Double payments recorded for refund.
    public var doublePayments: Int
    /// The last checkpoint's sequence number (0: none yet).
    public var checkpointSeq: Int64
    /// The ledger counters of the last checkpoint, to compare with what the orders rebuild.
    public var lastCheckpointCounters: [LedgerKey: StockCounters]
    /// Every group of an event not retired, as last recorded (no members: those are the orders
    /// naming it), in id order within each event.
    public var groups: [Group] = []
    /// The retired events, whose orders and groups stay in storage only, oldest first.
    public var retiredEvents: [RetiredEvent] = []
    /// The last ids the retired events took in each slot: never given out again.
    public var floors: [SequenceFloor] = []
    /// Coupons of live batches spent by orders of retired events: spent for good, though their orders are not loaded.
    public var spentCoupons: [SpentCoupon] = []
    /// Retired coupon batches (their coupons are not loaded) with the coupons they issued.
    public var retiredBatches: [(batch: String, issued: Int64)] = []
    /// Every claimed coupon, state `available` (the engine derives held and spent from orders).
    public var coupons: [Coupon] = []
    /// Stored first answers to `Idempotency-Key` requests, oldest first (expired ones included:
    /// the engine drops those against its clock).
    public var idempotentAnswers: [IdempotentAnswer] = []
    /// Nonces of accepted payment notifications with until when they are remembered (expired
    /// ones included: the engine drops those against its clock).
    public var nonces: [(nonce: String, untilSeconds: Int64)] = []
    /// Double charges recorded for refund: the order and the extra transaction.
    public var refunds: [(OrderID, String)] = []
    /// Each webhook receiver's delivery cursor: every change up to it was delivered.
    public var webhookCursors: [String: Int64] = [:]
    /// Deliveries given up, oldest first.
    public var parkedDeliveries: [ParkedDelivery] = []
    /// Events created through the admin API, oldest first: id, request body, creation time.
    public var adminEvents: [(id: String, body: [UInt8], atMs: Int64)] = []
    /// Coupon batches created through the admin API, oldest first: id, request body, creation time.
    public var adminCoupons: [(id: String, body: [UInt8], atMs: Int64)] = []
    /// Each admin-edited event's definition after its latest edit: id, definition, time.
    public var eventEdits: [(id: String, body: [UInt8], atMs: Int64)] = []

    /// A state; every part empty by default (a first start).
    public init(
        orders: [Order] = [], restocks: [(LedgerKey, Int64)] = [], pausedEvents: Set<String> = [],
        doublePayments: Int = 0, checkpointSeq: Int64 = 0, lastCheckpointCounters: [LedgerKey: StockCounters] = [:]
    ) {
        self.orders = orders
        self.restocks = restocks
        self.pausedEvents = pausedEvents
        self.doublePayments = doublePayments
        self.checkpointSeq = checkpointSeq
        self.lastCheckpointCounters = lastCheckpointCounters
    }
}

/// An event whose orders and groups left memory, with what stays known of it.
public struct RetiredEvent: Sendable, Equatable {
    /// The event id.
    public var event: String
    /// When it retired, unix ms.
    public var atMs: Int64
    /// Orders it held.
    public var orders: Int
    /// Groups it formed.
    public var groupsFormed: Int
    /// Each of its ledgers' final counters.
    public var counters: [LedgerKey: StockCounters]

    /// Creates a record.
    public init(event: String, atMs: Int64, orders: Int, groupsFormed: Int, counters: [LedgerKey: StockCounters]) {
        self.event = event
        self.atMs = atMs
        self.orders = orders
        self.groupsFormed = groupsFormed
        self.counters = counters
    }
}

extension Journal {
    /// Reads what `<directory>/flashsale.db` holds; a missing directory or file is an empty state.
    ///
    /// Safe while a `Journal` is open on the same directory: it reads one consistent snapshot.
    ///
    /// Of the stored idempotent answers only the newest `idempotentAnswersMax` are read: the
    /// store keeps no more, and a day of flooded keys must not all be loaded at a restart.
    public static func recover(
        directory: String, idempotentAnswersMax: Int = JournalLimits.idempotentAnswersReadMax
    ) throws -> RecoveredState {
        try recover(directory: directory, idempotentAnswersMax: idempotentAnswersMax, parallelFrom: parallelReadOrdersMin, readers: recoveryReaders)
    }

    /// `recover(directory:idempotentAnswersMax:)`, reading the orders with `readers` connections
    /// once there are `parallelFrom` of them (tests choose both).
    static func recover(directory: String, idempotentAnswersMax: Int = JournalLimits.idempotentAnswersReadMax, parallelFrom: Int, readers: Int) throws -> RecoveredState {
        let path = databasePath(directory)
        guard FileManager.default.fileExists(atPath: path) else { return RecoveredState() }
        // Read-write (not read-only) so that SQLite can replay a WAL left by a crash.
        let database = try SQLiteDatabase(path: path, flags: [.readWrite, .noMutex])
        try database.setBusyTimeout(milliseconds: JournalStore.busyTimeoutMs)
        try database.exec("BEGIN")
        defer { try? database.exec("COMMIT") }
        let hasSchema = try database.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
        guard try hasSchema.step() else { return RecoveredState() }
        let version = try JournalStore.meta("schema_version", in: database)
        guard version == JournalStore.schemaVersion else {
            throw SQLiteError(
                code: SQLITE_MISMATCH, message: "\(path) has schema version \(version ?? 0), expected \(JournalStore.schemaVersion)")
        }
        var state = RecoveredState()
        state.retiredEvents = try readRetiredEvents(database)
        if state.retiredEvents.isEmpty {
            state.orders = try readOrders(database, path: path, event: nil, parallelFrom: parallelFrom, readers: readers)
            state.groups = try readGroups(database, path: path, event: nil)
        } else {
            // Only the live events' rows, through the event indexes: a restart reads what is
            // live, however many sales the file holds.
            let retired = Set(state.retiredEvents.map(\.event))
            for event in try distinct("event", of: "orders", database) where !retired.contains(event) {
                state.orders += try readOrders(database, path: path, event: event, parallelFrom: parallelFrom, readers: readers)
                state.groups += try readGroups(database, path: path, event: event)
            }
            let floors = try database.prepare("SELECT kind, slot, last FROM retired_floors ORDER BY kind, slot")
            while try floors.step() {
                guard let kind = SequenceFloor.Kind(rawValue: Int(floors.int64(at: 0))),
                    let slot = Int(exactly: floors.int64(at: 1)), slot >= 0, slot < OrderID.slotCount
                else {
                    throw SQLiteError(code: SQLITE_CORRUPT, message: "\(path): retired floor \(floors.int64(at: 0))/\(floors.int64(at: 1))")
                }
                state.floors.append(SequenceFloor(kind: kind, slot: slot, last: UInt64(bitPattern: floors.int64(at: 2))))
            }
            let spent = try database.prepare("SELECT code, order_id FROM spent_coupons ORDER BY code")
            while try spent.step() {
                state.spentCoupons.append(
                    SpentCoupon(code: spent.string(at: 0) ?? "", order: OrderID(rawValue: UInt64(bitPattern: spent.int64(at: 1)))))
            }
        }
        state.restocks = try readRestocks(database)
        let batches = try database.prepare("SELECT batch, issued FROM retired_batches ORDER BY at_ms, batch")
        while try batches.step() { state.retiredBatches.append((batches.string(at: 0) ?? "", batches.int64(at: 1))) }
        if state.retiredBatches.isEmpty {
            state.coupons = try readCoupons(database, path: path, batch: nil)
        } else {
            let retired = Set(state.retiredBatches.map(\.batch))
            for batch in try distinct("batch", of: "coupons", database) where !retired.contains(batch) {
                state.coupons += try readCoupons(database, path: path, batch: batch)
            }
        }
        let paused = try database.prepare("SELECT event FROM paused")
        while try paused.step() { state.pausedEvents.insert(paused.string(at: 0) ?? "") }
        let refunds = try database.prepare("SELECT order_id, txn FROM refunds")
        while try refunds.step() {
            state.refunds.append((OrderID(rawValue: UInt64(bitPattern: refunds.int64(at: 0))), refunds.string(at: 1) ?? ""))
        }
        state.doublePayments = state.refunds.count
        let nonces = try database.prepare("SELECT nonce, until_s FROM nonces")
        while try nonces.step() { state.nonces.append((nonces.string(at: 0) ?? "", nonces.int64(at: 1))) }
        state.checkpointSeq = try JournalStore.meta("checkpoint_seq", in: database) ?? 0
        let cursors = try database.prepare("SELECT url, delivered_through FROM webhook_cursors")
        while try cursors.step() { state.webhookCursors[cursors.string(at: 0) ?? ""] = cursors.int64(at: 1) }
        let parked = try database.prepare(
            "SELECT url, change_id, type, attempts, last_error, at_ms FROM webhook_parked ORDER BY at_ms, change_id")
        while try parked.step() {
            state.parkedDeliveries.append(ParkedDelivery(
                url: parked.string(at: 0) ?? "", changeID: parked.int64(at: 1), type: parked.string(at: 2) ?? "",
                attempts: Int(parked.int64(at: 3)), lastError: parked.string(at: 4) ?? "", atMs: parked.int64(at: 5)))
        }
        let adminEvents = try database.prepare("SELECT id, body, created_ms FROM admin_events ORDER BY created_ms, rowid")
        while try adminEvents.step() {
            state.adminEvents.append((adminEvents.string(at: 0) ?? "", Array((adminEvents.string(at: 1) ?? "").utf8), adminEvents.int64(at: 2)))
        }
        let adminCoupons = try database.prepare("SELECT id, body, created_ms FROM admin_coupons ORDER BY created_ms, rowid")
        while try adminCoupons.step() {
            state.adminCoupons.append((adminCoupons.string(at: 0) ?? "", Array((adminCoupons.string(at: 1) ?? "").utf8), adminCoupons.int64(at: 2)))
        }
        let edits = try database.prepare("SELECT id, body, at_ms FROM admin_event_edits ORDER BY at_ms, id")
        while try edits.step() {
            state.eventEdits.append((edits.string(at: 0) ?? "", Array((edits.string(at: 1) ?? "").utf8), edits.int64(at: 2)))
        }
        state.idempotentAnswers = try readIdempotentAnswers(database, newestMax: idempotentAnswersMax)
        let ledgers = try database.prepare(
            "SELECT event, sku, total, available, reserved, sold FROM ledgers WHERE checkpoint_seq = ?1")
        try ledgers.bind(state.checkpointSeq, at: 1)
        while try ledgers.step() {
            let key = LedgerKey(event: ledgers.string(at: 0) ?? "", sku: ledgers.string(at: 1) ?? "")
            state.lastCheckpointCounters[key] = StockCounters(
                total: ledgers.int64(at: 2), available: ledgers.int64(at: 3),
                reserved: ledgers.int64(at: 4), sold: ledgers.int64(at: 5))
        }
        return state
    }

    /// Orders are read by this many connections at once, each a range of ids, when there are
    /// at least `parallelReadOrdersMin` of them: decoding rows is most of a restart's reading.
    static let recoveryReaders = max(1, min(8, ProcessInfo.processInfo.activeProcessorCount))
    /// Fewer orders than this are read by one connection (threads cost more than they save).
    static let parallelReadOrdersMin = 50_000

    /// The retired events with their final counters, oldest first.
    private static func readRetiredEvents(_ database: SQLiteDatabase) throws -> [RetiredEvent] {
        var events: [RetiredEvent] = []
        var index: [String: Int] = [:]
        let statement = try database.prepare("SELECT event, at_ms, orders, groups_formed FROM retired_events ORDER BY at_ms, event")
        while try statement.step() {
            let event = statement.string(at: 0) ?? ""
            index[event] = events.count
            events.append(RetiredEvent(
                event: event, atMs: statement.int64(at: 1), orders: Int(statement.int64(at: 2)),
                groupsFormed: Int(statement.int64(at: 3)), counters: [:]))
        }
        let ledgers = try database.prepare("SELECT event, sku, total, available, reserved, sold FROM retired_ledgers")
        while try ledgers.step() {
            let event = ledgers.string(at: 0) ?? ""
            guard let position = index[event] else { continue }
            events[position].counters[LedgerKey(event: event, sku: ledgers.string(at: 1) ?? "")] = StockCounters(
                total: ledgers.int64(at: 2), available: ledgers.int64(at: 3), reserved: ledgers.int64(at: 4), sold: ledgers.int64(at: 5))
        }
        return events
    }

    /// Every value of the indexed `column` of `table` (an event, a batch), each found by one
    /// seek in its index (not a scan of the table): O(values × log rows).
    private static func distinct(_ column: String, of table: String, _ database: SQLiteDatabase) throws -> [String] {
        let statement = try database.prepare(
            """
            WITH RECURSIVE next(value) AS (
                SELECT min(\(column)) FROM \(table)
                UNION ALL
                SELECT (SELECT min(\(column)) FROM \(table) WHERE \(column) > next.value) FROM next WHERE next.value IS NOT NULL
            )
            SELECT value FROM next WHERE value IS NOT NULL
            """)
        var values: [String] = []
        while try statement.step() { values.append(statement.string(at: 0) ?? "") }
        return values
    }

    /// The orders of `event` (every event's when nil), in id order.
    private static func readOrders(_ database: SQLiteDatabase, path: String, event: String?, parallelFrom: Int, readers: Int) throws -> [Order] {
        let bounds = try database.prepare("SELECT count(*), min(id), max(id) FROM orders \(event == nil ? "" : "WHERE event = ?1")")
        if let event { try bounds.bind(event, at: 1) }
        guard try bounds.step() else { return [] }
        let count = Int(bounds.int64(at: 0))
        guard count >= parallelFrom, readers > 1 else {
            return try readOrders(database, path: path, event: event, from: .min, before: nil, capacity: count)
        }
        // Ids are `sequence << slotBits | slot`: equal ranges of ids hold about equal numbers of
        // orders. Cut points in floating point: only the balance depends on their precision.
        let low = Double(bounds.int64(at: 1)), high = Double(bounds.int64(at: 2))
        let cuts = (1..<readers).map { index -> Int64 in
            let cut = low + (high - low) * Double(index) / Double(readers)
            return cut >= 9.2e18 ? .max : Int64(cut)
        }
        let ranges = zip([Int64.min] + cuts, cuts.map(Optional.some) + [nil]).map { (from: $0, before: $1) }
        let parts = Mutex([Result<[Order], any Error>?](repeating: nil, count: ranges.count))
        // Each range through its own connection, in its own read transaction. Recovery runs
        // before the engine takes any claim, so nothing commits in between; the count check
        // below proves it.
        DispatchQueue.concurrentPerform(iterations: ranges.count) { index in
            let part = Result {
                let reader = try SQLiteDatabase(path: path, flags: [.readOnly, .noMutex])
                try reader.setBusyTimeout(milliseconds: JournalStore.busyTimeoutMs)
                try reader.exec("BEGIN")
                defer { try? reader.exec("COMMIT") }
                return try readOrders(
                    reader, path: path, event: event, from: ranges[index].from, before: ranges[index].before,
                    capacity: count / ranges.count + 1)
            }
            parts.withLock { $0[index] = part }
        }
        var orders: [Order] = []
        orders.reserveCapacity(count)
        for part in parts.withLock({ $0 }) { orders += try part!.get() }
        guard orders.count == count else {
            throw SQLiteError(
                code: SQLITE_BUSY, message: "\(path): orders changed while being read (\(orders.count) read, \(count) counted); was another process writing?")
        }
        return orders
    }

    /// The orders of `event` (any when nil) with `from <= id < before` (no upper bound when
    /// `before` is nil), in id order.
    private static func readOrders(
        _ database: SQLiteDatabase, path: String, event: String?, from: Int64, before: Int64?, capacity: Int
    ) throws -> [Order] {
        let statement = try database.prepare(
            """
            SELECT id, event, sku, user, qty, amount, discount, created_ms, expires_ms, status, txn, group_id, coupon
            FROM orders WHERE id >= ?1 \(before == nil ? "" : "AND id < ?2") \(event == nil ? "" : "AND event = ?3") ORDER BY id
            """)
        try statement.bind(from, at: 1)
        if let before { try statement.bind(before, at: 2) }
        if let event { try statement.bind(event, at: 3) }
        var orders: [Order] = []
        orders.reserveCapacity(capacity)
        // Orders of one ledger share its key: reuse it rather than hold a copy of the strings per
        // order. The last key seen per slot is tried first, by its bytes, before any string is made.
        var keys: [LedgerKey: LedgerKey] = [:]
        var lastBySlot = [(event: [UInt8], sku: [UInt8], key: LedgerKey)?](repeating: nil, count: OrderID.slotCount)
        while try statement.step() {
            let id = OrderID(rawValue: UInt64(bitPattern: statement.int64(at: 0)))
            let rawStatus = statement.int64(at: 9)
            let qty = statement.int64(at: 4)
            guard let status = UInt8(exactly: rawStatus).flatMap(OrderStatus.init(rawValue:)),
                let qty32 = Int32(exactly: qty)
            else {
                throw SQLiteError(code: SQLITE_CORRUPT, message: "\(path): order \(id) has status \(rawStatus), qty \(qty)")
            }
            let key: LedgerKey
            if let last = lastBySlot[id.slot], statement.columnEquals(last.event, at: 1), statement.columnEquals(last.sku, at: 2) {
                key = last.key
            } else {
                let read = LedgerKey(event: statement.string(at: 1) ?? "", sku: statement.string(at: 2) ?? "")
                key = keys[read] ?? read
                keys[read] = key
                lastBySlot[id.slot] = (Array(key.event.utf8), Array(key.sku.utf8), key)
            }
            orders.append(
                Order(
                    id: id, key: key, user: statement.string(at: 3) ?? "", qty: qty32,
                    amountFen: statement.int64(at: 5), discountFen: statement.int64(at: 6),
                    createdAtMs: statement.int64(at: 7), expiresAtMs: statement.int64(at: 8),
                    status: status, transaction: statement.string(at: 10),
                    group: statement.isNull(at: 11) ? nil : GroupID(rawValue: UInt64(bitPattern: statement.int64(at: 11))),
                    coupon: statement.string(at: 12)))
        }
        return orders
    }

    /// The groups of `event` (every event's when nil), in id order.
    private static func readGroups(_ database: SQLiteDatabase, path: String, event: String?) throws -> [Group] {
        let statement = try database.prepare(
            """
            SELECT id, event, sku, size, price, leader, created_ms, expires_ms, status FROM groups
            \(event == nil ? "" : "WHERE event = ?1") ORDER BY id
            """)
        if let event { try statement.bind(event, at: 1) }
        var groups: [Group] = []
        while try statement.step() {
            let id = GroupID(rawValue: UInt64(bitPattern: statement.int64(at: 0)))
            let rawStatus = statement.int64(at: 8)
            guard let status = UInt8(exactly: rawStatus).flatMap(GroupStatus.init(rawValue:)),
                let size = Int32(exactly: statement.int64(at: 3)), size >= 1
            else {
                throw SQLiteError(code: SQLITE_CORRUPT, message: "\(path): group \(id) has status \(rawStatus), size \(statement.int64(at: 3))")
            }
            groups.append(
                Group(
                    id: id, key: LedgerKey(event: statement.string(at: 1) ?? "", sku: statement.string(at: 2) ?? ""),
                    size: size, priceFen: statement.int64(at: 4), leader: statement.string(at: 5) ?? "",
                    createdAtMs: statement.int64(at: 6), expiresAtMs: statement.int64(at: 7), status: status))
        }
        return groups
    }

    /// The coupons of `batch` (every batch's when nil), by claim time.
    private static func readCoupons(_ database: SQLiteDatabase, path: String, batch: String?) throws -> [Coupon] {
        let statement = try database.prepare(
            """
            SELECT code, batch, owner, ip, value, min_spend, claimed_ms, expires_ms FROM coupons
            \(batch == nil ? "" : "WHERE batch = ?1") ORDER BY claimed_ms, code
            """)
        if let batch { try statement.bind(batch, at: 1) }
        var coupons: [Coupon] = []
        while try statement.step() {
            let text = statement.string(at: 0) ?? ""
            guard let code = CouponCode(text) else {
                throw SQLiteError(code: SQLITE_CORRUPT, message: "\(path): coupon code \(text) is malformed")
            }
            coupons.append(
                Coupon(
                    code: code, batch: statement.string(at: 1) ?? "", owner: statement.string(at: 2) ?? "",
                    clientIP: statement.string(at: 3) ?? "", valueFen: statement.int64(at: 4),
                    minSpendFen: statement.int64(at: 5), claimedAtMs: statement.int64(at: 6),
                    expiresAtMs: statement.int64(at: 7)))
        }
        return coupons
    }

    /// The newest `newestMax` stored answers, oldest first.
    private static func readIdempotentAnswers(_ database: SQLiteDatabase, newestMax: Int) throws -> [IdempotentAnswer] {
        let exists = try database.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'idempotency'")
        guard try exists.step() else { return [] }
        let statement = try database.prepare(
            "SELECT user, key, status, body, at_ms, request_digest FROM (SELECT * FROM idempotency ORDER BY at_ms DESC LIMIT ?1) ORDER BY at_ms")
        try statement.bind(Int64(newestMax), at: 1)
        var answers: [IdempotentAnswer] = []
        while try statement.step() {
            answers.append(
                IdempotentAnswer(
                    user: statement.string(at: 0) ?? "", key: statement.string(at: 1) ?? "",
                    status: Int(statement.int64(at: 2)), body: Array((statement.string(at: 3) ?? "").utf8),
                    atMs: statement.int64(at: 4), requestDigest: statement.string(at: 5)))
        }
        return answers
    }

    private static func readRestocks(_ database: SQLiteDatabase) throws -> [(LedgerKey, Int64)] {
        let statement = try database.prepare("SELECT event, sku, delta FROM restocks ORDER BY event, sku")
        var restocks: [(LedgerKey, Int64)] = []
        while try statement.step() {
            restocks.append((LedgerKey(event: statement.string(at: 0) ?? "", sku: statement.string(at: 1) ?? ""), statement.int64(at: 2)))
        }
        return restocks
    }
}
