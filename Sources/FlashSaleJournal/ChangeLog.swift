// How the change feed is stored: the changes the feed reports, as the shards decided them, in
// a compact binary form, many to a row of `change_log`. A commit of a hundred orders adds one
// row of a few kilobytes, not a hundred rows of JSON, so the feed costs the writer little; the
// JSON is rendered when the feed is read (the admin listing, the webhooks), off the writer.
//
// A row holds the changes numbered `first_id...last_id`, in order. Its `data` is a format byte
// and then one entry per change: a tag, the change's time as a delta from the entry before,
// and its fields. Integers are LEB128 varints (signed ones zigzagged), strings a varint length
// and their UTF-8, and a ledger key the same as the entry before's is one byte.

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

/// One change of the log, decoded: what the shards decided, or an event already rendered.
public enum LoggedChange: Sendable, Equatable {
    /// A change, to be rendered by the feed.
    case change(InventoryChange)
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
    private var previousKey: LedgerKey?

    init() {
        bytes = [ChangeLog.format]
        bytes.reserveCapacity(4_096)
    }

    /// Appends `change`, which happened at `atMs`.
    mutating func append(_ change: InventoryChange, atMs: Int64) {
        switch change {
        case .order(let order):
            header(.order, atMs: atMs)
            write(order, atMs: atMs)
        case .doublePayment(let order, let transaction, _):
            header(.doublePayment, atMs: atMs)
            write(order, atMs: atMs)
            string(transaction)
        case .group(let group):
            header(.group, atMs: atMs)
            unsigned(group.id.rawValue)
            key(group.key)
            signed(Int64(group.size))
            signed(group.priceFen)
            string(group.leader)
            signed(group.createdAtMs &- atMs)
            signed(group.expiresAtMs &- group.createdAtMs)
            bytes.append(group.status.rawValue)
        case .coupon(let coupon):
            header(.coupon, atMs: atMs)
            unsigned(UInt64(bitPattern: Int64(coupon.code.slot)))
            fixed(coupon.code.high)
            fixed(coupon.code.low)
            string(coupon.batch)
            string(coupon.owner)
            string(coupon.clientIP)
            signed(coupon.valueFen)
            signed(coupon.minSpendFen)
            signed(coupon.claimedAtMs &- atMs)
            signed(coupon.expiresAtMs &- coupon.claimedAtMs)
        case .restock(let ledger, let delta):
            header(.restock, atMs: atMs)
            key(ledger)
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
        bytes.append(tag.rawValue)
        signed(atMs &- previousAtMs)
        previousAtMs = atMs
        newestAtMs = max(newestAtMs, atMs)
        count += 1
    }

    private mutating func write(_ order: Order, atMs: Int64) {
        unsigned(order.id.rawValue)
        key(order.key)
        string(order.user)
        signed(Int64(order.qty))
        signed(order.amountFen)
        signed(order.discountFen)
        signed(order.createdAtMs &- atMs)
        signed(order.expiresAtMs &- order.createdAtMs)
        bytes.append(order.status.rawValue)
        let flags: UInt8 = (order.transaction == nil ? 0 : 1) | (order.group == nil ? 0 : 2) | (order.coupon == nil ? 0 : 4)
        bytes.append(flags)
        if let transaction = order.transaction { string(transaction) }
        if let group = order.group { unsigned(group.rawValue) }
        if let coupon = order.coupon { string(coupon) }
    }

    private mutating func key(_ key: LedgerKey) {
        if key == previousKey {
            bytes.append(0)
            return
        }
        bytes.append(1)
        string(key.event)
        string(key.sku)
        previousKey = key
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
    private var previousKey: LedgerKey?

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
            return (atMs, .change(.order(try order(atMs: atMs))))
        case .doublePayment:
            let order = try order(atMs: atMs)
            return (atMs, .change(.doublePayment(order, transaction: try string(), atMs: atMs)))
        case .group:
            let id = GroupID(rawValue: try unsigned())
            let key = try key()
            guard let size = Int32(exactly: try signed()) else { throw Malformed() }
            let price = try signed()
            let leader = try string()
            let created = atMs &+ (try signed())
            let expires = created &+ (try signed())
            guard let status = GroupStatus(rawValue: try byte()) else { throw Malformed() }
            return (atMs, .change(.group(Group(
                id: id, key: key, size: size, priceFen: price, leader: leader, createdAtMs: created,
                expiresAtMs: expires, status: status))))
        case .coupon:
            guard let slot = Int(exactly: Int64(bitPattern: try unsigned())) else { throw Malformed() }
            let high = try fixed(), low = try fixed()
            let batch = try string(), owner = try string(), ip = try string()
            let value = try signed(), minSpend = try signed()
            let claimed = atMs &+ (try signed())
            let expires = claimed &+ (try signed())
            return (atMs, .change(.coupon(Coupon(
                code: CouponCode(slot: slot, high: high, low: low), batch: batch, owner: owner, clientIP: ip,
                valueFen: value, minSpendFen: minSpend, claimedAtMs: claimed, expiresAtMs: expires))))
        case .restock:
            let key = try key()
            return (atMs, .change(.restock(key, delta: try signed())))
        case .rendered:
            let type = try string()
            return (atMs, .rendered(type: type, data: try slice()))
        }
    }

    private mutating func order(atMs: Int64) throws(Malformed) -> Order {
        let id = OrderID(rawValue: try unsigned())
        let key = try key()
        let user = try string()
        guard let qty = Int32(exactly: try signed()) else { throw Malformed() }
        let amount = try signed(), discount = try signed()
        let created = atMs &+ (try signed())
        let expires = created &+ (try signed())
        guard let status = OrderStatus(rawValue: try byte()) else { throw Malformed() }
        let flags = try byte()
        guard flags & ~7 == 0 else { throw Malformed() }
        let transaction = flags & 1 == 0 ? nil : try string()
        let group = flags & 2 == 0 ? nil : GroupID(rawValue: try unsigned())
        let coupon = flags & 4 == 0 ? nil : try string()
        return Order(
            id: id, key: key, user: user, qty: qty, amountFen: amount, discountFen: discount, createdAtMs: created,
            expiresAtMs: expires, status: status, transaction: transaction, group: group, coupon: coupon)
    }

    private mutating func key() throws(Malformed) -> LedgerKey {
        switch try byte() {
        case 0:
            guard let previousKey else { throw Malformed() }
            return previousKey
        case 1:
            let event = try string()
            let key = LedgerKey(event: event, sku: try string())
            previousKey = key
            return key
        default:
            throw Malformed()
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
