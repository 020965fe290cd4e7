// The change feed (§6): every change the shards decide that the feed reports is
// written by the journal in the same transaction as the change itself (a transactional outbox),
// numbered by the journal in strictly increasing order. What an event says (its type and its
// JSON) is the engine's business: it hands the journal a `ChangeFeedRenderer`. The journal
// stores the changes (`ChangeLog`) and reads them back in id order, rendered.

import CSQLite
import Foundation
import InventoryActor
import Synchronization

/// Which changes the feed reports, when, and what each says. The journal asks `eventTime` on
/// its writer thread, in the change's transaction, and stores the change itself (see
/// `ChangeLog`); `event` renders it when the feed is read.
public protocol ChangeFeedRenderer: Sendable {
    /// When `change` happened, ms since the epoch, if the feed reports it; nil if it does not.
    /// Called on the journal's writer thread while the change's transaction is open: it must
    /// be quick and must not block.
    func eventTime(of change: InventoryChange) -> Int64?

    /// The event a reported change becomes: its type and its `data` object as JSON.
    func event(for change: InventoryChange) -> (type: String, data: [UInt8])
}

/// A change event as stored: its id, strictly increasing across restarts and pruning.
public struct StoredChange: Sendable, Equatable {
    /// The feed's sequence number.
    public var id: Int64
    /// The event's type.
    public var type: String
    /// When it happened, ms since the epoch.
    public var atMs: Int64
    /// The `data` object, as JSON.
    public var data: [UInt8]

    /// A stored change.
    public init(id: Int64, type: String, atMs: Int64, data: [UInt8]) {
        self.id = id
        self.type = type
        self.atMs = atMs
        self.data = data
    }
}

/// A webhook delivery given up after `give_up_after`, kept for ops (`OUTBOX`).
public struct ParkedDelivery: Sendable, Equatable {
    /// The receiver.
    public var url: String
    /// The change that was not delivered.
    public var changeID: Int64
    /// Its type.
    public var type: String
    /// Attempts made.
    public var attempts: Int
    /// What the last attempt got.
    public var lastError: String
    /// When it was parked, ms since the epoch.
    public var atMs: Int64

    /// A parked delivery.
    public init(url: String, changeID: Int64, type: String, attempts: Int, lastError: String, atMs: Int64) {
        self.url = url
        self.changeID = changeID
        self.type = type
        self.attempts = attempts
        self.lastError = lastError
        self.atMs = atMs
    }
}

/// An order as the journal holds it, for the admin listing and the export.
public struct StoredOrder: Sendable, Equatable {
    /// The order as last recorded.
    public var order: Order
    /// The refund transactions recorded against it (double charges to give back).
    public var refunds: [String]
}

/// Reads the feed, the webhook progress and the orders from the database, on its own
/// read-only connection: WAL lets it read while the writer writes, and it never takes the
/// write lock. Each call reads one consistent snapshot. Blocking: call it off the event loops.
public final class JournalReader: Sendable {
    private let connection: Mutex<Connection?>
    private let path: String

    /// The prepared statements of one connection.
    private final class Connection {
        let database: SQLiteDatabase
        let changes: SQLiteStatement
        let countAfter: SQLiteStatement
        let orders: SQLiteStatement
        let refunds: SQLiteStatement
        let order: SQLiteStatement
        let group: SQLiteStatement
        let coupon: SQLiteStatement

        /// The refund transactions recorded against order `id` (double charges), oldest first.
        func refunds(of id: OrderID) throws(SQLiteError) -> [String] {
            defer { refunds.reset() }
            try refunds.bind(Int64(bitPattern: id.rawValue), at: 1)
            var transactions: [String] = []
            while try refunds.step() { transactions.append(refunds.string(at: 0) ?? "") }
            return transactions
        }

        init(path: String) throws(SQLiteError) {
            database = try SQLiteDatabase(path: path, flags: [.readOnly, .noMutex])
            try database.setBusyTimeout(milliseconds: JournalStore.busyTimeoutMs)
            // The rows from the one holding `after + 1` on, found through the primary key.
            let from = "first_id >= coalesce((SELECT max(first_id) FROM change_log WHERE first_id <= ?1 + 1), 0)"
            changes = try database.prepare("SELECT first_id, data FROM change_log WHERE \(from) ORDER BY first_id")
            countAfter = try database.prepare(
                "SELECT coalesce(sum(last_id - max(first_id, ?1 + 1) + 1), 0) FROM change_log WHERE \(from) AND last_id > ?1")
            orders = try database.prepare(
                """
                SELECT id, event, sku, user, qty, amount, discount, created_ms, expires_ms, status, txn, group_id, coupon
                FROM orders
                WHERE id > ?1 AND (?2 IS NULL OR event = ?2) AND (?3 IS NULL OR status = ?3) AND created_ms >= ?4
                ORDER BY id LIMIT ?5
                """)
            refunds = try database.prepare("SELECT txn FROM refunds WHERE order_id = ?1 ORDER BY at_ms")
            order = try database.prepare(
                """
                SELECT id, event, sku, user, qty, amount, discount, created_ms, expires_ms, status, txn, group_id, coupon
                FROM orders WHERE id = ?1
                """)
            group = try database.prepare("SELECT event, sku, size, price, leader, created_ms, expires_ms, status FROM groups WHERE id = ?1")
            coupon = try database.prepare("SELECT batch, owner, ip, value, min_spend, claimed_ms, expires_ms FROM coupons WHERE code = ?1")
        }

        /// The order `id` with the status and transaction a change gave it; nil if it is not stored.
        func order(_ id: OrderID, status: OrderStatus, transaction: String?, path: String) throws(SQLiteError) -> Order? {
            defer { order.reset() }
            try order.bind(Int64(bitPattern: id.rawValue), at: 1)
            guard try order.step() else { return nil }
            let stored = try JournalReader.order(order, path: path)
            return Order(
                id: id, key: stored.key, user: stored.user, qty: stored.qty, amountFen: stored.amountFen,
                discountFen: stored.discountFen, createdAtMs: stored.createdAtMs, expiresAtMs: stored.expiresAtMs,
                status: status, transaction: transaction, group: stored.group, coupon: stored.coupon)
        }

        /// The group `id` with the status a change gave it (`status`), or as last recorded (nil);
        /// nil if it is not stored.
        func group(_ id: GroupID, status: GroupStatus?, path: String) throws(SQLiteError) -> Group? {
            defer { group.reset() }
            try group.bind(Int64(bitPattern: id.rawValue), at: 1)
            guard try group.step() else { return nil }
            guard let size = Int32(exactly: group.int64(at: 2)),
                let status = status ?? UInt8(exactly: group.int64(at: 7)).flatMap(GroupStatus.init(rawValue:))
            else {
                throw SQLiteError(code: SQLITE_CORRUPT, message: "\(path): group \(id) has size \(group.int64(at: 2)), status \(group.int64(at: 7))")
            }
            return Group(
                id: id, key: LedgerKey(event: group.string(at: 0) ?? "", sku: group.string(at: 1) ?? ""), size: size,
                priceFen: group.int64(at: 3), leader: group.string(at: 4) ?? "", createdAtMs: group.int64(at: 5),
                expiresAtMs: group.int64(at: 6), status: status)
        }

        /// The coupon `code` as claimed; nil if it is not stored.
        func coupon(_ code: CouponCode) throws(SQLiteError) -> Coupon? {
            defer { coupon.reset() }
            try coupon.bind(code.description, at: 1)
            guard try coupon.step() else { return nil }
            return Coupon(
                code: code, batch: coupon.string(at: 0) ?? "", owner: coupon.string(at: 1) ?? "", clientIP: coupon.string(at: 2) ?? "",
                valueFen: coupon.int64(at: 3), minSpendFen: coupon.int64(at: 4), claimedAtMs: coupon.int64(at: 5),
                expiresAtMs: coupon.int64(at: 6))
        }

        /// The change a log entry records, joined with the facts it names.
        func change(_ logged: LoggedChange, atMs: Int64, path: String) throws(SQLiteError) -> InventoryChange {
            func missing(_ what: String) -> SQLiteError {
                SQLiteError(code: SQLITE_CORRUPT, message: "\(path): the change feed names \(what), which is not stored")
            }
            switch logged {
            case .order(let id, let status, let transaction):
                guard let order = try order(id, status: status, transaction: transaction, path: path) else { throw missing("order \(id)") }
                return .order(order)
            case .doublePayment(let id, let status, let transaction, let refund):
                guard let order = try order(id, status: status, transaction: transaction, path: path) else { throw missing("order \(id)") }
                return .doublePayment(order, transaction: refund, atMs: atMs)
            case .group(let id, let status):
                guard let group = try group(id, status: status, path: path) else { throw missing("group \(id)") }
                return .group(group)
            case .coupon(let code):
                guard let coupon = try coupon(code) else { throw missing("coupon \(code)") }
                return .coupon(coupon)
            case .restock(let key, let delta):
                return .restock(key, delta: delta)
            case .rendered:
                preconditionFailure("a rendered entry has no change to join")
            }
        }
    }

    private let feed: (any ChangeFeedRenderer)?

    /// A reader of the journal in `directory` (opened at the first read: the file may not exist
    /// yet), rendering the change feed with `feed`.
    public init(directory: String, feed: (any ChangeFeedRenderer)? = nil) {
        self.path = Journal.databasePath(directory)
        self.connection = Mutex(nil)
        self.feed = feed
    }

    private func withConnection<T: Sendable>(_ body: (Connection) throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        try connection.withLock { (held: inout Connection?) throws(SQLiteError) -> T in
            let open: Connection
            if let held { open = held } else {
                open = try Connection(path: path)
                held = open
            }
            try open.database.exec("BEGIN")
            defer { try? open.database.exec("COMMIT") }
            return try body(open)
        }
    }

    /// Up to `limit` changes with an id above `after`, in id order, rendered by the feed.
    public func changes(after: Int64, limit: Int) throws(SQLiteError) -> [StoredChange] {
        guard let feed else { throw SQLiteError(code: SQLITE_MISUSE, message: "\(path): the change feed read without a renderer") }
        return try withConnection { (connection) throws(SQLiteError) -> [StoredChange] in
            let statement = connection.changes
            defer { statement.reset() }
            try statement.bind(after, at: 1)
            var changes: [StoredChange] = []
            while changes.count < limit, try statement.step() {
                var id = statement.int64(at: 0)
                let entries: [(atMs: Int64, change: LoggedChange)]
                do throws(ChangeLogDecoder.Malformed) {
                    var decoder = try ChangeLogDecoder(statement.blob(at: 1))
                    var decoded: [(atMs: Int64, change: LoggedChange)] = []
                    while let entry = try decoder.next() { decoded.append(entry) }
                    entries = decoded
                } catch {
                    throw SQLiteError(code: SQLITE_CORRUPT, message: "\(path): change log row \(id) is malformed")
                }
                for (atMs, logged) in entries where changes.count < limit {
                    defer { id += 1 }
                    guard id > after else { continue }
                    if case .rendered(let type, let data) = logged {
                        changes.append(StoredChange(id: id, type: type, atMs: atMs, data: data))
                    } else {
                        let event = feed.event(for: try connection.change(logged, atMs: atMs, path: path))
                        changes.append(StoredChange(id: id, type: event.type, atMs: atMs, data: event.data))
                    }
                }
            }
            return changes
        }
    }

    /// How many changes have an id above `after`.
    public func count(after: Int64) throws(SQLiteError) -> Int {
        try withConnection { (connection) throws(SQLiteError) in
            let statement = connection.countAfter
            defer { statement.reset() }
            try statement.bind(after, at: 1)
            guard try statement.step() else { return 0 }
            return Int(statement.int64(at: 0))
        }
    }

    /// Up to `limit` orders with an id above `after`, in id order, of `event` and `status` if
    /// given, created at or after `sinceMs`; each with its refund transactions.
    public func orders(event: String?, status: OrderStatus?, sinceMs: Int64 = .min, after: OrderID?, limit: Int) throws(SQLiteError) -> [StoredOrder] {
        try withConnection { (connection) throws(SQLiteError) -> [StoredOrder] in
            let statement = connection.orders
            defer { statement.reset() }
            // Ids are stored as the bit pattern of the unsigned id: compare in that order.
            try statement.bind(after.map { Int64(bitPattern: $0.rawValue) } ?? .min, at: 1)
            try statement.bind(event, at: 2)
            if let status { try statement.bind(Int64(status.rawValue), at: 3) } else { try statement.bindNull(at: 3) }
            try statement.bind(sinceMs, at: 4)
            try statement.bind(Int64(limit), at: 5)
            var rows: [StoredOrder] = []
            while try statement.step() {
                rows.append(StoredOrder(order: try Self.order(statement, path: path), refunds: []))
            }
            for index in rows.indices where rows[index].order.status == .paid || rows[index].order.status == .formed
                || rows[index].order.status == .refundPending {
                rows[index].refunds = try connection.refunds(of: rows[index].order.id)
            }
            return rows
        }
    }

    /// The order `id` as last recorded, with its refund transactions; nil if it is not stored.
    public func order(_ id: OrderID) throws(SQLiteError) -> StoredOrder? {
        try withConnection { (connection) throws(SQLiteError) -> StoredOrder? in
            let statement = connection.order
            defer { statement.reset() }
            try statement.bind(Int64(bitPattern: id.rawValue), at: 1)
            guard try statement.step() else { return nil }
            return StoredOrder(order: try Self.order(statement, path: path), refunds: try connection.refunds(of: id))
        }
    }

    /// The group `id` as last recorded (no members); nil if it is not stored.
    public func group(_ id: GroupID) throws(SQLiteError) -> Group? {
        try withConnection { (connection) throws(SQLiteError) -> Group? in try connection.group(id, status: nil, path: path) }
    }

    /// The order in the current row of `statement`, whose columns are `id, event, sku, user,
    /// qty, amount, discount, created_ms, expires_ms, status, txn, group_id, coupon`.
    static func order(_ statement: SQLiteStatement, path: String) throws(SQLiteError) -> Order {
        let id = OrderID(rawValue: UInt64(bitPattern: statement.int64(at: 0)))
        let rawStatus = statement.int64(at: 9)
        guard let status = UInt8(exactly: rawStatus).flatMap(OrderStatus.init(rawValue:)),
            let qty = Int32(exactly: statement.int64(at: 4))
        else { throw SQLiteError(code: SQLITE_CORRUPT, message: "\(path): order \(id) has status \(rawStatus)") }
        return Order(
            id: id, key: LedgerKey(event: statement.string(at: 1) ?? "", sku: statement.string(at: 2) ?? ""),
            user: statement.string(at: 3) ?? "", qty: qty, amountFen: statement.int64(at: 5),
            discountFen: statement.int64(at: 6), createdAtMs: statement.int64(at: 7), expiresAtMs: statement.int64(at: 8),
            status: status, transaction: statement.string(at: 10),
            group: statement.isNull(at: 11) ? nil : GroupID(rawValue: UInt64(bitPattern: statement.int64(at: 11))),
            coupon: statement.string(at: 12))
    }
}
