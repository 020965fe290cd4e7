// The journal's database on the writer's side: schema, pragmas and the prepared statements
// that apply records. Used only by the journal's writer thread once opened; it never decides
// anything, it writes what it is given.

import CSQLite
import InventoryActor

/// The journal's SQLite connection and its prepared statements, owned by the writer thread.
final class JournalStore {
    /// The on-disk layout version kept in `meta.schema_version`.
    static let schemaVersion: Int64 = 7
    /// How long a write waits for another connection's lock (a recovery reader), ms.
    static let busyTimeoutMs: Int32 = 5_000

    /// Brings a version-1 file (no groups or coupons) to version 2; run after `schemaSQL`,
    /// which has created the new tables already.
    static let migrationFromVersion1SQL = """
        ALTER TABLE orders ADD COLUMN group_id INTEGER;
        ALTER TABLE orders ADD COLUMN coupon TEXT;
        UPDATE meta SET value = 2 WHERE key = 'schema_version';
        """

    /// Brings a version-2 file to version 3: idempotent answers are bound to their request.
    /// (A version-1 file gets the column from `schemaSQL`, which creates the table.)
    static func migrateFromVersion2(_ database: SQLiteDatabase) throws(SQLiteError) {
        let columns = try database.prepare("SELECT 1 FROM pragma_table_info('idempotency') WHERE name = 'request_digest'")
        let hasColumn = try columns.step()
        try database.exec(
            "BEGIN IMMEDIATE;\n" + (hasColumn ? "" : "ALTER TABLE idempotency ADD COLUMN request_digest TEXT;\n")
                + "UPDATE meta SET value = 3 WHERE key = 'schema_version';\nCOMMIT;")
    }

    /// The schema; every statement is idempotent so opening an existing file changes nothing.
    static let schemaSQL = """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
        INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', 7), ('checkpoint_seq', 0), ('next_change_id', 1);
        CREATE TABLE IF NOT EXISTS orders (
            id INTEGER PRIMARY KEY,
            event TEXT NOT NULL,
            sku TEXT NOT NULL,
            user TEXT NOT NULL,
            qty INTEGER NOT NULL,
            amount INTEGER NOT NULL,
            discount INTEGER NOT NULL,
            created_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            status INTEGER NOT NULL,
            txn TEXT,
            group_id INTEGER,
            coupon TEXT
        );
        CREATE TABLE IF NOT EXISTS groups (
            id INTEGER PRIMARY KEY,
            event TEXT NOT NULL,
            sku TEXT NOT NULL,
            size INTEGER NOT NULL,
            price INTEGER NOT NULL,
            leader TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            status INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS coupons (
            code TEXT PRIMARY KEY,
            batch TEXT NOT NULL,
            owner TEXT NOT NULL,
            ip TEXT NOT NULL,
            value INTEGER NOT NULL,
            min_spend INTEGER NOT NULL,
            claimed_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS restocks (
            event TEXT NOT NULL, sku TEXT NOT NULL, delta INTEGER NOT NULL,
            PRIMARY KEY (event, sku)
        );
        CREATE TABLE IF NOT EXISTS paused (event TEXT PRIMARY KEY);
        CREATE TABLE IF NOT EXISTS refunds (order_id INTEGER NOT NULL, txn TEXT NOT NULL, at_ms INTEGER NOT NULL);
        DELETE FROM refunds WHERE rowid NOT IN (SELECT min(rowid) FROM refunds GROUP BY order_id, txn);
        CREATE UNIQUE INDEX IF NOT EXISTS refunds_order_txn ON refunds (order_id, txn);
        CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, until_s INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS ledgers (
            event TEXT NOT NULL, sku TEXT NOT NULL,
            total INTEGER NOT NULL, available INTEGER NOT NULL, reserved INTEGER NOT NULL, sold INTEGER NOT NULL,
            checkpoint_seq INTEGER NOT NULL,
            PRIMARY KEY (event, sku)
        );
        CREATE TABLE IF NOT EXISTS idempotency (
            user TEXT NOT NULL, key TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL, at_ms INTEGER NOT NULL,
            request_digest TEXT,
            PRIMARY KEY (user, key)
        );
        CREATE INDEX IF NOT EXISTS idempotency_at ON idempotency (at_ms);
        CREATE TABLE IF NOT EXISTS change_log (
            first_id INTEGER PRIMARY KEY,
            last_id INTEGER NOT NULL,
            at_ms INTEGER NOT NULL,
            data BLOB NOT NULL
        );
        CREATE TABLE IF NOT EXISTS admin_events (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_ms INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS admin_coupons (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_ms INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS admin_event_edits (id TEXT PRIMARY KEY, body TEXT NOT NULL, at_ms INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS retired_events (
            event TEXT PRIMARY KEY, at_ms INTEGER NOT NULL, orders INTEGER NOT NULL, groups_formed INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS retired_ledgers (
            event TEXT NOT NULL, sku TEXT NOT NULL,
            total INTEGER NOT NULL, available INTEGER NOT NULL, reserved INTEGER NOT NULL, sold INTEGER NOT NULL,
            PRIMARY KEY (event, sku)
        );
        CREATE TABLE IF NOT EXISTS retired_floors (
            kind INTEGER NOT NULL, slot INTEGER NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (kind, slot)
        );
        CREATE TABLE IF NOT EXISTS spent_coupons (code TEXT PRIMARY KEY, order_id INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS retired_batches (batch TEXT PRIMARY KEY, at_ms INTEGER NOT NULL, issued INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS coupons_batch ON coupons (batch);
        CREATE INDEX IF NOT EXISTS orders_event ON orders (event);
        CREATE INDEX IF NOT EXISTS groups_event ON groups (event);
        CREATE TABLE IF NOT EXISTS webhook_cursors (url TEXT PRIMARY KEY, delivered_through INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS webhook_parked (
            url TEXT NOT NULL, change_id INTEGER NOT NULL, type TEXT NOT NULL, attempts INTEGER NOT NULL,
            last_error TEXT NOT NULL, at_ms INTEGER NOT NULL,
            PRIMARY KEY (url, change_id)
        );
        """
    /// Idempotent answers written between purges of the expired ones, records: keeps the table
    /// near a day's worth without a DELETE per insert.
    static let idempotencyPurgeEveryRecords = 1_024
    /// Payment nonces written between purges of the expired ones.
    static let noncePurgeEveryRecords = 1_024

    let database: SQLiteDatabase
    private let begin: SQLiteStatement
    private let commit: SQLiteStatement
    private let rollback: SQLiteStatement
    private let upsertOrder: SQLiteStatement
    private let insertRefund: SQLiteStatement
    private let upsertNonce: SQLiteStatement
    private let purgeNonces: SQLiteStatement
    private var noncesSincePurge = 0
    private let upsertGroup: SQLiteStatement
    private let insertCoupon: SQLiteStatement
    private let addRestock: SQLiteStatement
    private let insertPaused: SQLiteStatement
    private let deletePaused: SQLiteStatement
    private let deleteLedgers: SQLiteStatement
    private let insertLedger: SQLiteStatement
    private let setCheckpointSeq: SQLiteStatement
    private let walCheckpoint: SQLiteStatement
    private let probeWrite: SQLiteStatement
    private let upsertIdempotent: SQLiteStatement
    private let purgeIdempotent: SQLiteStatement
    private var idempotentSincePurge = 0
    private let faultInjector: (@Sendable () -> SQLiteError?)?
    private let feed: (any ChangeFeedRenderer)?
    private let insertChangeRow: SQLiteStatement
    private let pruneChanges: SQLiteStatement
    private let setNextChangeID: SQLiteStatement
    /// The id the next change event gets: above every id ever given, pruned or not.
    private var nextChangeID: Int64
    private let upsertCursor: SQLiteStatement
    private let insertAdminEvent: SQLiteStatement
    private let insertEventEdit: SQLiteStatement
    private let insertAdminCoupon: SQLiteStatement
    private let insertParked: SQLiteStatement

    /// Opens or creates the database at `path`: WAL, `synchronous`, schema, statements.
    init(
        path: String, synchronous: JournalSynchronous, feed: (any ChangeFeedRenderer)? = nil,
        faultInjector: (@Sendable () -> SQLiteError?)?
    ) throws(SQLiteError) {
        let database = try SQLiteDatabase(path: path, flags: [.readWrite, .create, .noMutex])
        try database.setBusyTimeout(milliseconds: Self.busyTimeoutMs)
        let mode = try database.prepare("PRAGMA journal_mode=WAL")
        guard try mode.step(), mode.string(at: 0)?.lowercased() == "wal" else {
            throw SQLiteError(code: SQLITE_ERROR, message: "cannot put \(path) in WAL mode")
        }
        mode.reset()
        try database.exec("PRAGMA synchronous=\(synchronous.rawValue.uppercased())")
        try database.exec("BEGIN IMMEDIATE;\n" + Self.schemaSQL + "\nCOMMIT;")
        if try Self.meta("schema_version", in: database) == 1 {
            try database.exec("BEGIN IMMEDIATE;\n" + Self.migrationFromVersion1SQL + "\nCOMMIT;")
        }
        if try Self.meta("schema_version", in: database) == 2 {
            try Self.migrateFromVersion2(database)
        }
        if try Self.meta("schema_version", in: database) == 3 {
            // Version 4 adds the change feed and the webhook tables, which `schemaSQL` made.
            try database.exec("UPDATE meta SET value = 4 WHERE key = 'schema_version'")
        }
        if try Self.meta("schema_version", in: database) == 4 {
            try Self.migrateFromVersion4(database)
        }
        if try Self.meta("schema_version", in: database) == 5 {
            // Version 6 adds `admin_events`, which `schemaSQL` made.
            try database.exec("UPDATE meta SET value = 6 WHERE key = 'schema_version'")
        }
        if try Self.meta("schema_version", in: database) == 6 {
            // Version 7 adds the retired events' tables and the indexes recovery reads live
            // events through, which `schemaSQL` made.
            try database.exec("UPDATE meta SET value = 7 WHERE key = 'schema_version'")
        }
        let version = try Self.meta("schema_version", in: database)
        guard version == Self.schemaVersion else {
            throw SQLiteError(
                code: SQLITE_MISMATCH, message: "\(path) has schema version \(version ?? 0), expected \(Self.schemaVersion)")
        }
        self.database = database
        self.faultInjector = faultInjector
        self.feed = feed
        insertChangeRow = try database.prepare("INSERT INTO change_log (first_id, last_id, at_ms, data) VALUES (?1, ?2, ?3, ?4)")
        pruneChanges = try database.prepare(
            """
            DELETE FROM change_log WHERE first_id IN (
                SELECT first_id FROM change_log
                WHERE at_ms < ?1
                    AND (last_id < (SELECT min(first_id) FROM change_log) + ?2 OR first_id = (SELECT min(first_id) FROM change_log)))
            """)
        setNextChangeID = try database.prepare("UPDATE meta SET value = max(value, ?1) WHERE key = 'next_change_id'")
        nextChangeID = try Self.nextChangeID(in: database)
        insertAdminEvent = try database.prepare("INSERT INTO admin_events (id, body, created_ms) VALUES (?1, ?2, ?3)")
        insertAdminCoupon = try database.prepare("INSERT INTO admin_coupons (id, body, created_ms) VALUES (?1, ?2, ?3)")
        // An edit holds the whole definition after it: only the latest of an event is kept.
        insertEventEdit = try database.prepare("INSERT OR REPLACE INTO admin_event_edits (id, body, at_ms) VALUES (?1, ?2, ?3)")
        upsertCursor = try database.prepare(
            """
            INSERT INTO webhook_cursors (url, delivered_through) VALUES (?1, ?2)
            ON CONFLICT(url) DO UPDATE SET delivered_through = max(delivered_through, excluded.delivered_through)
            """)
        insertParked = try database.prepare(
            "INSERT OR REPLACE INTO webhook_parked (url, change_id, type, attempts, last_error, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        begin = try database.prepare("BEGIN IMMEDIATE")
        commit = try database.prepare("COMMIT")
        rollback = try database.prepare("ROLLBACK")
        upsertOrder = try database.prepare(
            """
            INSERT INTO orders (id, event, sku, user, qty, amount, discount, created_ms, expires_ms, status, txn, group_id, coupon)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
            ON CONFLICT(id) DO UPDATE SET status = excluded.status, txn = excluded.txn
            """)
        upsertGroup = try database.prepare(
            """
            INSERT INTO groups (id, event, sku, size, price, leader, created_ms, expires_ms, status)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
            ON CONFLICT(id) DO UPDATE SET status = excluded.status
            """)
        insertCoupon = try database.prepare(
            """
            INSERT OR IGNORE INTO coupons (code, batch, owner, ip, value, min_spend, claimed_ms, expires_ms)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
            """)
        insertRefund = try database.prepare("INSERT OR IGNORE INTO refunds (order_id, txn, at_ms) VALUES (?1, ?2, ?3)")
        upsertNonce = try database.prepare("INSERT OR REPLACE INTO nonces (nonce, until_s) VALUES (?1, ?2)")
        purgeNonces = try database.prepare("DELETE FROM nonces WHERE until_s <= ?1")
        addRestock = try database.prepare(
            """
            INSERT INTO restocks (event, sku, delta) VALUES (?1, ?2, ?3)
            ON CONFLICT(event, sku) DO UPDATE SET delta = delta + excluded.delta
            """)
        insertPaused = try database.prepare("INSERT OR IGNORE INTO paused (event) VALUES (?1)")
        deletePaused = try database.prepare("DELETE FROM paused WHERE event = ?1")
        deleteLedgers = try database.prepare("DELETE FROM ledgers")
        insertLedger = try database.prepare(
            """
            INSERT OR REPLACE INTO ledgers (event, sku, total, available, reserved, sold, checkpoint_seq)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            """)
        setCheckpointSeq = try database.prepare("UPDATE meta SET value = ?1 WHERE key = 'checkpoint_seq'")
        walCheckpoint = try database.prepare("PRAGMA wal_checkpoint(TRUNCATE)")
        probeWrite = try database.prepare("UPDATE meta SET value = value WHERE key = 'schema_version'")
        upsertIdempotent = try database.prepare(
            "INSERT OR REPLACE INTO idempotency (user, key, status, body, at_ms, request_digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        purgeIdempotent = try database.prepare("DELETE FROM idempotency WHERE at_ms <= ?1")
    }

    /// The integer `meta` value for `key`; nil when absent.
    static func meta(_ key: String, in database: SQLiteDatabase) throws(SQLiteError) -> Int64? {
        let statement = try database.prepare("SELECT value FROM meta WHERE key = ?1")
        try statement.bind(key, at: 1)
        guard try statement.step(), !statement.isNull(at: 0) else { return nil }
        return statement.int64(at: 0)
    }

    /// The checkpoint sequence number stored in `meta`.
    func storedCheckpointSeq() throws(SQLiteError) -> Int64 {
        try Self.meta("checkpoint_seq", in: database) ?? 0
    }

    /// Applies `records` in one transaction; on any failure rolls back and throws, changing nothing.
    func commit(_ records: ArraySlice<JournalRecord>) throws(SQLiteError) {
        var log = ChangeLogRows(nextID: nextChangeID)
        try transaction { () throws(SQLiteError) in
            for record in records {
                try apply(record, log: &log)
                if case .inventory(let change) = record, let feed, let atMs = feed.eventTime(of: change) {
                    log.encoder.append(change, atMs: atMs)
                    if log.encoder.count == ChangeLog.changesPerRowMax { try insertRow(&log) }
                }
            }
            if log.encoder.count > 0 { try insertRow(&log) }
        }
        nextChangeID = log.nextID
    }

    /// The change log rows one commit is writing, and the id its next event gets.
    private struct ChangeLogRows {
        var nextID: Int64
        var encoder = ChangeLogEncoder()
    }

    /// Writes the events encoded so far as one row of `change_log`, numbered from `log.nextID`.
    private func insertRow(_ log: inout ChangeLogRows) throws(SQLiteError) {
        let count = Int64(log.encoder.count)
        try insertChangeRow.bind(log.nextID, at: 1)
        try insertChangeRow.bind(log.nextID + count - 1, at: 2)
        try insertChangeRow.bind(log.encoder.newestAtMs, at: 3)
        try insertChangeRow.bind(blob: log.encoder.bytes, at: 4)
        try insertChangeRow.execute()
        log.nextID += count
        log.encoder = ChangeLogEncoder()
    }

    /// The id the next change event gets: past the newest row, and past every id handed out
    /// before the rows holding them were pruned (kept in `meta` by each prune).
    private static func nextChangeID(in database: SQLiteDatabase) throws(SQLiteError) -> Int64 {
        let newest = try database.prepare("SELECT coalesce(max(last_id), 0) + 1 FROM change_log")
        guard try newest.step() else { return 1 }
        return max(newest.int64(at: 0), try meta("next_change_id", in: database) ?? 1)
    }

    /// Brings a version-4 file to version 5: the change feed's rows of rendered JSON (table
    /// `changes`) move into `change_log` as rendered entries, under their own ids.
    static func migrateFromVersion4(_ database: SQLiteDatabase) throws(SQLiteError) {
        try database.exec("BEGIN IMMEDIATE")
        do throws(SQLiteError) {
            let exists = try database.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'changes'")
            if try exists.step() {
                exists.reset()
                let rows = try database.prepare("SELECT id, type, at_ms, data FROM changes ORDER BY id")
                let insert = try database.prepare("INSERT INTO change_log (first_id, last_id, at_ms, data) VALUES (?1, ?2, ?3, ?4)")
                var encoder = ChangeLogEncoder()
                var firstID: Int64 = 0, nextID: Int64 = 1
                func flush() throws(SQLiteError) {
                    guard encoder.count > 0 else { return }
                    try insert.bind(firstID, at: 1)
                    try insert.bind(firstID + Int64(encoder.count) - 1, at: 2)
                    try insert.bind(encoder.newestAtMs, at: 3)
                    try insert.bind(blob: encoder.bytes, at: 4)
                    try insert.execute()
                    encoder = ChangeLogEncoder()
                }
                while try rows.step() {
                    let id = rows.int64(at: 0)
                    // A row holds consecutive ids only.
                    if encoder.count == ChangeLog.changesPerRowMax || (encoder.count > 0 && id != nextID) { try flush() }
                    if encoder.count == 0 { firstID = id }
                    encoder.appendRendered(type: rows.string(at: 1) ?? "", data: Array((rows.string(at: 3) ?? "").utf8), atMs: rows.int64(at: 2))
                    nextID = id + 1
                }
                try flush()
                rows.reset()
                // AUTOINCREMENT remembered ids handed out before the newest rows were pruned.
                let sequence = try database.prepare(
                    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0) + 1")
                let handedOut = try sequence.step() ? sequence.int64(at: 0) : 1
                sequence.reset()
                let setNext = try database.prepare("UPDATE meta SET value = max(value, ?1) WHERE key = 'next_change_id'")
                try setNext.bind(max(nextID, handedOut), at: 1)
                try setNext.execute()
                try database.exec("DROP TABLE changes")
            }
            try database.exec("UPDATE meta SET value = 5 WHERE key = 'schema_version'; COMMIT")
        } catch {
            if !database.isAutocommit { try? database.exec("ROLLBACK") }
            throw error
        }
    }

    /// Commits a transaction that rewrites one row, so that a page really reaches the disk:
    /// after a failed commit, the proof that writes succeed again.
    func probe() throws(SQLiteError) {
        try transaction { () throws(SQLiteError) in try probeWrite.execute() }
    }

    /// Replaces the `ledgers` snapshot with `counters` and stores `seq`, in one transaction.
    func writeCheckpoint(_ counters: [(LedgerKey, StockCounters)], seq: Int64) throws(SQLiteError) {
        try transaction { () throws(SQLiteError) in
            try deleteLedgers.execute()
            for (key, value) in counters {
                try insertLedger.bind(key.event, at: 1)
                try insertLedger.bind(key.sku, at: 2)
                try insertLedger.bind(value.total, at: 3)
                try insertLedger.bind(value.available, at: 4)
                try insertLedger.bind(value.reserved, at: 5)
                try insertLedger.bind(value.sold, at: 6)
                try insertLedger.bind(seq, at: 7)
                try insertLedger.execute()
            }
            try setCheckpointSeq.bind(seq, at: 1)
            try setCheckpointSeq.execute()
        }
    }

    /// Copies the WAL into the database and truncates it; false when readers kept it from finishing.
    ///
    /// Must run outside any transaction: inside one SQLite answers "database table is locked".
    func truncateWAL() throws(SQLiteError) -> Bool {
        defer { walCheckpoint.reset() }
        guard try walCheckpoint.step() else { return true }
        return walCheckpoint.int64(at: 0) == 0
    }

    /// Runs `body` between BEGIN IMMEDIATE and COMMIT (consulting the fault injector first);
    /// rolls back on failure.
    private func transaction(_ body: () throws(SQLiteError) -> Void) throws(SQLiteError) {
        try begin.execute()
        do throws(SQLiteError) {
            try body()
            if let fault = faultInjector?() { throw fault }
            try commit.execute()
        } catch {
            // SQLite may already have rolled back (SQLITE_FULL, some I/O errors); only roll back
            // a transaction that is still open.
            if !database.isAutocommit { try? rollback.execute() }
            throw error
        }
    }

    /// Writes one record's effect into the state tables (the change log's rows are `commit`'s).
    private func apply(_ record: JournalRecord, log: inout ChangeLogRows) throws(SQLiteError) {
        switch record {
        case .inventory(.order(let order)):
            let statement = upsertOrder
            try statement.bind(Int64(bitPattern: order.id.rawValue), at: 1)
            try statement.bind(order.key.event, at: 2)
            try statement.bind(order.key.sku, at: 3)
            try statement.bind(order.user, at: 4)
            try statement.bind(Int64(order.qty), at: 5)
            try statement.bind(order.amountFen, at: 6)
            try statement.bind(order.discountFen, at: 7)
            try statement.bind(order.createdAtMs, at: 8)
            try statement.bind(order.expiresAtMs, at: 9)
            try statement.bind(Int64(order.status.rawValue), at: 10)
            try statement.bind(order.transaction, at: 11)
            if let group = order.group {
                try statement.bind(Int64(bitPattern: group.rawValue), at: 12)
            } else {
                try statement.bindNull(at: 12)
            }
            try statement.bind(order.coupon, at: 13)
            try statement.execute()
        case .inventory(.group(let group)):
            let statement = upsertGroup
            try statement.bind(Int64(bitPattern: group.id.rawValue), at: 1)
            try statement.bind(group.key.event, at: 2)
            try statement.bind(group.key.sku, at: 3)
            try statement.bind(Int64(group.size), at: 4)
            try statement.bind(group.priceFen, at: 5)
            try statement.bind(group.leader, at: 6)
            try statement.bind(group.createdAtMs, at: 7)
            try statement.bind(group.expiresAtMs, at: 8)
            try statement.bind(Int64(group.status.rawValue), at: 9)
            try statement.execute()
        case .inventory(.coupon(let coupon)):
            let statement = insertCoupon
            try statement.bind(coupon.code.description, at: 1)
            try statement.bind(coupon.batch, at: 2)
            try statement.bind(coupon.owner, at: 3)
            try statement.bind(coupon.clientIP, at: 4)
            try statement.bind(coupon.valueFen, at: 5)
            try statement.bind(coupon.minSpendFen, at: 6)
            try statement.bind(coupon.claimedAtMs, at: 7)
            try statement.bind(coupon.expiresAtMs, at: 8)
            try statement.execute()
        case .inventory(.doublePayment(let order, let transaction, let atMs)):
            try insertRefund.bind(Int64(bitPattern: order.id.rawValue), at: 1)
            try insertRefund.bind(transaction, at: 2)
            try insertRefund.bind(atMs, at: 3)
            try insertRefund.execute()
        case .inventory(.restock(let key, let delta)):
            try addRestock.bind(key.event, at: 1)
            try addRestock.bind(key.sku, at: 2)
            try addRestock.bind(delta, at: 3)
            try addRestock.execute()
        case .paused(let event, let paused):
            let statement = paused ? insertPaused : deletePaused
            try statement.bind(event, at: 1)
            try statement.execute()
        case .nonce(let nonce, let untilSeconds):
            try upsertNonce.bind(nonce, at: 1)
            try upsertNonce.bind(untilSeconds, at: 2)
            try upsertNonce.execute()
            noncesSincePurge += 1
            if noncesSincePurge >= Self.noncePurgeEveryRecords {
                noncesSincePurge = 0
                // `untilSeconds` is at most the acceptance window past now: anything that ran
                // out two windows before it is certainly expired.
                try purgeNonces.bind(untilSeconds - JournalLimits.noncePurgeLagSeconds, at: 1)
                try purgeNonces.execute()
            }
        case .webhookDelivered(let url, let through):
            try upsertCursor.bind(url, at: 1)
            try upsertCursor.bind(through, at: 2)
            try upsertCursor.execute()
        case .webhookParked(let parked):
            try insertParked.bind(parked.url, at: 1)
            try insertParked.bind(parked.changeID, at: 2)
            try insertParked.bind(parked.type, at: 3)
            try insertParked.bind(Int64(parked.attempts), at: 4)
            try insertParked.bind(parked.lastError, at: 5)
            try insertParked.bind(parked.atMs, at: 6)
            try insertParked.execute()
        case .pruneChanges(let beforeMs, let limit):
            // Events of this transaction before the prune are written first, in order; the
            // newest row may go too: `meta` keeps the next id from going back.
            if log.encoder.count > 0 { try insertRow(&log) }
            try setNextChangeID.bind(log.nextID, at: 1)
            try setNextChangeID.execute()
            try pruneChanges.bind(beforeMs, at: 1)
            try pruneChanges.bind(Int64(limit), at: 2)
            try pruneChanges.execute()
        case .adminEvent(let id, let body, let atMs):
            try insertAdminEvent.bind(id, at: 1)
            try insertAdminEvent.bind(utf8: body, at: 2)
            try insertAdminEvent.bind(atMs, at: 3)
            try insertAdminEvent.execute()
        case .adminCoupon(let id, let body, let atMs):
            try insertAdminCoupon.bind(id, at: 1)
            try insertAdminCoupon.bind(utf8: body, at: 2)
            try insertAdminCoupon.bind(atMs, at: 3)
            try insertAdminCoupon.execute()
        case .adminEventEdit(let id, let body, let atMs):
            try insertEventEdit.bind(id, at: 1)
            try insertEventEdit.bind(utf8: body, at: 2)
            try insertEventEdit.bind(atMs, at: 3)
            try insertEventEdit.execute()
        case .retireEvent(let part, let atMs):
            try retire(part, atMs: atMs)
        case .retireCouponBatch(let batch, let issued, let atMs):
            let statement = try database.prepare("INSERT OR REPLACE INTO retired_batches (batch, at_ms, issued) VALUES (?1, ?2, ?3)")
            try statement.bind(batch, at: 1)
            try statement.bind(atMs, at: 2)
            try statement.bind(issued, at: 3)
            try statement.execute()
            // Its coupons spent by retired orders need no record any more (recovery reads none
            // of them): spent_coupons holds only what live batches could still be asked to redeem.
            let forget = try database.prepare("DELETE FROM spent_coupons WHERE code IN (SELECT code FROM coupons WHERE batch = ?1)")
            try forget.bind(batch, at: 1)
            try forget.execute()
        case .idempotentAnswer(let answer):
            try upsertIdempotent.bind(answer.user, at: 1)
            try upsertIdempotent.bind(answer.key, at: 2)
            try upsertIdempotent.bind(Int64(answer.status), at: 3)
            try upsertIdempotent.bind(String(decoding: answer.body, as: UTF8.self), at: 4)
            try upsertIdempotent.bind(answer.atMs, at: 5)
            try upsertIdempotent.bind(answer.requestDigest, at: 6)
            try upsertIdempotent.execute()
            idempotentSincePurge += 1
            if idempotentSincePurge >= Self.idempotencyPurgeEveryRecords {
                idempotentSincePurge = 0
                try purgeIdempotent.bind(answer.atMs - JournalLimits.idempotentAnswerRetentionMs, at: 1)
                try purgeIdempotent.execute()
            }
        }
    }

    /// Records that `part.event` retired: its final counters, the coupons its orders spent and
    /// the ids it used, so recovery can leave its orders and groups in storage. Rare (once per
    /// event): its statements are prepared here.
    private func retire(_ part: RetiredPart, atMs: Int64) throws(SQLiteError) {
        let event = try database.prepare(
            "INSERT OR REPLACE INTO retired_events (event, at_ms, orders, groups_formed) VALUES (?1, ?2, ?3, ?4)")
        try event.bind(part.event, at: 1)
        try event.bind(atMs, at: 2)
        try event.bind(Int64(part.orders), at: 3)
        try event.bind(Int64(part.groupsFormed), at: 4)
        try event.execute()
        let ledger = try database.prepare(
            "INSERT OR REPLACE INTO retired_ledgers (event, sku, total, available, reserved, sold) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        for (key, counters) in part.counters.sorted(by: { $0.key.sku < $1.key.sku }) {
            try ledger.bind(key.event, at: 1)
            try ledger.bind(key.sku, at: 2)
            try ledger.bind(counters.total, at: 3)
            try ledger.bind(counters.available, at: 4)
            try ledger.bind(counters.reserved, at: 5)
            try ledger.bind(counters.sold, at: 6)
            try ledger.execute()
        }
        let floor = try database.prepare(
            """
            INSERT INTO retired_floors (kind, slot, last) VALUES (?1, ?2, ?3)
            ON CONFLICT(kind, slot) DO UPDATE SET last = max(last, excluded.last)
            """)
        for retired in part.floors {
            try floor.bind(Int64(retired.kind.rawValue), at: 1)
            try floor.bind(Int64(retired.slot), at: 2)
            try floor.bind(Int64(bitPattern: retired.last), at: 3)
            try floor.execute()
        }
        // A coupon of a retired batch needs no record: its batch claims and redeems nothing more.
        let spent = try database.prepare(
            """
            INSERT OR REPLACE INTO spent_coupons (code, order_id) SELECT ?1, ?2
            WHERE NOT EXISTS (SELECT 1 FROM coupons WHERE code = ?1 AND batch IN (SELECT batch FROM retired_batches))
            """)
        for coupon in part.spentCoupons {
            try spent.bind(coupon.code, at: 1)
            try spent.bind(Int64(bitPattern: coupon.order.rawValue), at: 2)
            try spent.execute()
        }
    }
}
