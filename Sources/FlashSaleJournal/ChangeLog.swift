// How the change feed is stored: what changed, as the shards decided it, in a compact binary
// form, many changes to a row of `change_log`. An order's, group's or coupon's fixed facts
// (buyer, SKU, price, times) are in its own table from the transaction that created it and
// never change there; an entry keeps only what the change made of it (the status, the paying
// transaction) and the reader joins the two. A commit of a hundred orders so adds one row of
// about a kilobyte, not a hundred rows of JSON; the JSON is rendered when the feed is read
// (the admin listing, the webhooks), off the writer.
//
// A row holds the changes numbered `first_id...last_id`, in order. Its `data` is a format byte
// and then one entry per change: a tag, the change's time as a delta from the entry before,
// and its fields. Integers are LEB128 varints (signed ones zigzagged), strings a varint length
// and their UTF-8.

import InventoryActor

/// The change log's row format and its limits.
enum ChangeLog {
    /// The first byte of every row's `data`.
    static let format: UInt8 = 1
    /// Most changes one row holds: a read of one change decodes at most this many, and a
    /// prune deletes whole rows.
    static let changesPerRowMax = 128

    /// What an entry is.
    enum Tag: UInt8 {
        case order = 1, doublePayment, group, coupon, restock
        /// An event rendered before the log existed (schema 4), kept as its type and JSON.
        case rendered
    }
}

/// One change of the log as stored: what changed, to be joined with the facts it names.
enum LoggedChange: Sendable, Equatable {
    /// An order's status (and paying transaction) after a change.
    case order(OrderID, OrderStatus, transaction: String?)
    /// A second payment `refund` of an order, the order as it then stood.
    case doublePayment(OrderID, OrderStatus, transaction: String?, refund: String)
    /// A group's status after a change.
    case group(GroupID, GroupStatus)
    /// A coupon claimed.
    case coupon(CouponCode)
    /// A ledger's stock changed.
    case restock(LedgerKey, delta: Int64)
    /// An event rendered by an older version of the journal: its type and `data`.
    case rendered(type: String, data: [UInt8])
}

/// Builds one row's `data`.
struct ChangeLogEncoder {
    private(set) var bytes: [UInt8]
    private(set) var count = 0
    /// The newest change time in the row: the row is pruned once it is older than retention.
    private(set) var newestAtMs: Int64 = .min
    private var previousAtMs: Int64 = 0

    /// An empty row; it allocates with its first entry (most commits of a journal without a
    /// feed, or of records the feed does not report, write none).
    init() {
        bytes = []
    }

    /// Appends `change`, which happened at `atMs`.
    mutating func append(_ change: InventoryChange, atMs: Int64) {
        switch change {
        case .order(let order):
            header(.order, atMs: atMs)
            write(order)
        case .doublePayment(let order, let transaction, _):
            header(.doublePayment, atMs: atMs)
            write(order)
            string(transaction)
        case .group(let group):
            header(.group, atMs: atMs)
            unsigned(group.id.rawValue)
            bytes.append(group.status.rawValue)
        case .coupon(let coupon):
            header(.coupon, atMs: atMs)
            unsigned(UInt64(bitPattern: Int64(coupon.code.slot)))
            fixed(coupon.code.high)
            fixed(coupon.code.low)
        case .restock(let ledger, let delta):
            header(.restock, atMs: atMs)
            string(ledger.event)
            string(ledger.sku)
            signed(delta)
        }
    }

    /// Appends an event already rendered (a schema-4 row being carried over).
    mutating func appendRendered(type: String, data: [UInt8], atMs: Int64) {
        header(.rendered, atMs: atMs)
        string(type)
        unsigned(UInt64(data.count))
        bytes.append(contentsOf: data)
    }

    private mutating func header(_ tag: ChangeLog.Tag, atMs: Int64) {
        if bytes.isEmpty {
            bytes.reserveCapacity(4_096)
            bytes.append(ChangeLog.format)
        }
        bytes.append(tag.rawValue)
        signed(atMs &- previousAtMs)
        previousAtMs = atMs
        newestAtMs = max(newestAtMs, atMs)
        count += 1
    }

    private mutating func write(_ order: Order) {
        unsigned(order.id.rawValue)
        bytes.append(order.status.rawValue)
        if let transaction = order.transaction {
            bytes.append(1)
            string(transaction)
        } else {
            bytes.append(0)
        }
    }

    private mutating func unsigned(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    private mutating func signed(_ value: Int64) {
        unsigned(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    private mutating func fixed(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func string(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            unsigned(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }
}

/// Reads one row's `data` back, entry by entry. Malformed data is an error, never a trap.
struct ChangeLogDecoder {
    /// The row's data does not parse: the file is damaged.
    struct Malformed: Error {}

    private let bytes: [UInt8]
    private var position = 1
    private var previousAtMs: Int64 = 0

    init(_ bytes: [UInt8]) throws(Malformed) {
        guard bytes.first == ChangeLog.format else { throw Malformed() }
        self.bytes = bytes
    }

    /// A decoder of `bytes` whatever their first byte (for tests of the entries themselves).
    init(unchecked bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The next entry and its time; nil at the end of the row.
    mutating func next() throws(Malformed) -> (atMs: Int64, change: LoggedChange)? {
        guard position < bytes.count else { return nil }
        guard let tag = ChangeLog.Tag(rawValue: try byte()) else { throw Malformed() }
        let atMs = previousAtMs &+ (try signed())
        previousAtMs = atMs
        switch tag {
        case .order:
            let (id, status, transaction) = try order()
            return (atMs, .order(id, status, transaction: transaction))
        case .doublePayment:
            let (id, status, transaction) = try order()
            return (atMs, .doublePayment(id, status, transaction: transaction, refund: try string()))
        case .group:
            let id = GroupID(rawValue: try unsigned())
            guard let status = GroupStatus(rawValue: try byte()) else { throw Malformed() }
            return (atMs, .group(id, status))
        case .coupon:
            guard let slot = Int(exactly: Int64(bitPattern: try unsigned())) else { throw Malformed() }
            let high = try fixed()
            return (atMs, .coupon(CouponCode(slot: slot, high: high, low: try fixed())))
        case .restock:
            let event = try string()
            let key = LedgerKey(event: event, sku: try string())
            return (atMs, .restock(key, delta: try signed()))
        case .rendered:
            let type = try string()
            return (atMs, .rendered(type: type, data: try slice()))
        }
    }

    private mutating func order() throws(Malformed) -> (OrderID, OrderStatus, String?) {
        let id = OrderID(rawValue: try unsigned())
        guard let status = OrderStatus(rawValue: try byte()) else { throw Malformed() }
        switch try byte() {
        case 0: return (id, status, nil)
        case 1: return (id, status, try string())
        default: throw Malformed()
        }
    }

    private mutating func byte() throws(Malformed) -> UInt8 {
        guard position < bytes.count else { throw Malformed() }
        defer { position += 1 }
        return bytes[position]
    }

    private mutating func unsigned() throws(Malformed) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64, shift < 63 || next <= 1 else { throw Malformed() }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return value }
            shift += 7
        }
    }

    private mutating func signed() throws(Malformed) -> Int64 {
        let value = try unsigned()
        return Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
    }

    private mutating func fixed() throws(Malformed) -> UInt64 {
        guard bytes.count - position >= 8 else { throw Malformed() }
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[position + index]) << (8 * UInt64(index)) }
        position += 8
        return value
    }

    private mutating func slice() throws(Malformed) -> [UInt8] {
        let count = try unsigned()
        guard count <= UInt64(bytes.count - position) else { throw Malformed() }
        defer { position += Int(count) }
        return Array(bytes[position..<(position + Int(count))])
    }

    private mutating func string() throws(Malformed) -> String {
        String(decoding: try slice(), as: UTF8.self)
    }
}
