import FlashSaleTestKit
import Foundation
import Logging
import Testing

@testable import FlashSaleJournal
@testable import InventoryActor

/// The change log's binary rows: every reported change comes back as it went in, damaged bytes
/// are an error and never a trap, and a schema-4 feed of JSON rows is carried over whole.
@Suite struct ChangeLogTests {
    static let key = LedgerKey(event: "e1", sku: "A1")
    static let other = LedgerKey(event: "周三秒杀", sku: "SKU-二")

    /// One change of every kind, with and without its optional parts, on two keys.
    static var everyKind: [(atMs: Int64, change: InventoryChange)] {
        let plain = makeJournalOrder(sequence: 1, key: key, status: .pending, transaction: nil)
        let full = Order(
            id: OrderID(sequence: 9, slot: other.slot), key: other, user: "买家", qty: 3, amountFen: -5, discountFen: 1_000,
            createdAtMs: 1_700_000_000_500, expiresAtMs: 1_699_000_000_000, status: .refundPending, transaction: "tx-1",
            group: GroupID(sequence: 4, slot: 7), coupon: "C1-ab")
        let group = Group(
            id: GroupID(sequence: .max >> 12, slot: 3), key: other, size: 3, priceFen: 4_900, leader: "u1",
            createdAtMs: 1_700_000_000_000, expiresAtMs: 1_700_086_400_000, status: .failed)
        let coupon = Coupon(
            code: CouponCode(slot: 5, high: .max, low: 0x0123_4567_89AB_CDEF), batch: "b1", owner: "u2", clientIP: "::1",
            valueFen: 500, minSpendFen: 0, claimedAtMs: 1_700_000_000_001, expiresAtMs: 1_700_604_800_000)
        return [
            (1_700_000_000_003, .order(plain)),
            (1_700_000_000_002, .order(full)),
            (1_700_000_000_010, .doublePayment(full, transaction: "tx-2", atMs: 1_700_000_000_010)),
            (1_700_000_000_010, .group(group)),
            (coupon.claimedAtMs, .coupon(coupon)),
            (0, .restock(key, delta: -7)),
            (.max, .order(plain)),
        ]
    }

    @Test func anEntryKeepsWhatTheChangeMade() throws {
        var encoder = ChangeLogEncoder()
        for (atMs, change) in Self.everyKind { encoder.append(change, atMs: atMs) }
        encoder.appendRendered(type: "order.paid", data: Array(#"{"order":"1"}"#.utf8), atMs: 42)
        #expect(encoder.count == Self.everyKind.count + 1)
        #expect(encoder.newestAtMs == .max)

        var decoder = try ChangeLogDecoder(encoder.bytes)
        for (atMs, change) in Self.everyKind {
            let entry = try #require(try decoder.next())
            #expect(entry.atMs == atMs)
            switch change {
            case .order(let order):
                #expect(entry.change == .order(order.id, order.status, transaction: order.transaction))
            case .doublePayment(let order, let refund, _):
                #expect(entry.change == .doublePayment(order.id, order.status, transaction: order.transaction, refund: refund))
            case .group(let group):
                #expect(entry.change == .group(group.id, group.status))
            case .coupon(let coupon):
                #expect(entry.change == .coupon(coupon.code))
            case .restock(let key, let delta):
                #expect(entry.change == .restock(key, delta: delta))
            }
        }
        let rendered = try #require(try decoder.next())
        #expect(rendered.atMs == 42 && rendered.change == .rendered(type: "order.paid", data: Array(#"{"order":"1"}"#.utf8)))
        #expect(try decoder.next() == nil)
        // An order is a handful of bytes, whatever its buyer and SKU.
        var orders = ChangeLogEncoder()
        for sequence in 1...100 {
            let order = makeJournalOrder(sequence: UInt64(sequence), key: Self.key, status: .pending, transaction: nil)
            orders.append(.order(order), atMs: order.createdAtMs)
        }
        #expect(orders.bytes.count <= 100 * 8)
    }

    /// Reports every change; an event's data is the change as the reader rebuilt it.
    struct EveryChangeFeed: ChangeFeedRenderer {
        func eventTime(of change: InventoryChange) -> Int64? { 1_700_000_000_000 }
        func event(for change: InventoryChange) -> (type: String, data: [UInt8]) {
            ("change", Array(String(describing: change).utf8))
        }
    }

    @Test func theReaderRebuildsEveryChangeAsItStoodThen() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try Journal(
            directory: directory.path, synchronous: .normal, batchMax: 64, logger: ChangeFeedJournalTests.quiet, feed: EveryChangeFeed())
        let kinds = Self.everyKind.map(\.change).filter { if case .doublePayment = $0 { false } else { true } }
        guard case .order(let full) = kinds[1], case .group(let group) = kinds[2] else { Issue.record("fixture changed"); return }
        let paid = Order(
            id: full.id, key: full.key, user: full.user, qty: full.qty, amountFen: full.amountFen, discountFen: full.discountFen,
            createdAtMs: full.createdAtMs, expiresAtMs: full.expiresAtMs, status: .paid, transaction: "tx-9", group: full.group,
            coupon: full.coupon)
        let formed = Group(
            id: group.id, key: group.key, size: group.size, priceFen: group.priceFen, leader: group.leader,
            createdAtMs: group.createdAtMs, expiresAtMs: group.expiresAtMs, status: .formed)
        // Each change read back as it stood when it happened, not as its row stands now.
        let recorded = kinds + [.order(paid), .doublePayment(paid, transaction: "tx-10", atMs: 1_700_000_000_000), .group(formed)]
        var last: UInt64 = 0
        for change in recorded { last = journal.record(change) }
        try await journal.waitDurable(last)
        await journal.close()
        let read = try JournalReader(directory: directory.path, feed: EveryChangeFeed()).changes(after: 0, limit: 100)
        #expect(read.map { String(decoding: $0.data, as: UTF8.self) } == recorded.map { String(describing: $0) })
    }

    @Test func damagedRowsAreAnErrorNeverATrap() throws {
        var encoder = ChangeLogEncoder()
        for (atMs, change) in Self.everyKind { encoder.append(change, atMs: atMs) }
        let bytes = encoder.bytes
        // Every truncation, and every byte flipped: decoding ends (in an error or not) and never traps.
        for end in 0..<bytes.count {
            #expect(Self.decodesWithoutTrapping(Array(bytes[..<end])))
        }
        for index in bytes.indices {
            var damaged = bytes
            damaged[index] ^= 0xA5
            #expect(Self.decodesWithoutTrapping(damaged))
        }
        #expect(throws: ChangeLogDecoder.Malformed.self) { try ChangeLogDecoder([]) }
        #expect(throws: ChangeLogDecoder.Malformed.self) {
            var unknownTag = try ChangeLogDecoder([ChangeLog.format, 0x7F])
            _ = try unknownTag.next()
        }
        // A varint running past 64 bits.
        var runaway = ChangeLogDecoder(unchecked: [ChangeLog.format, ChangeLog.Tag.restock.rawValue] + Array(repeating: 0xFF, count: 11) + [1])
        #expect(throws: ChangeLogDecoder.Malformed.self) { try runaway.next() }
    }

    static func decodesWithoutTrapping(_ bytes: [UInt8]) -> Bool {
        guard var decoder = try? ChangeLogDecoder(bytes) else { return true }
        var entries = 0
        while entries <= 64, (try? decoder.next()) != nil { entries += 1 }
        return entries <= 64
    }

    @Test func readsStartMidRowAndCountAcrossRows() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try Journal(
            directory: directory.path, synchronous: .normal, batchMax: 4_096, logger: ChangeFeedJournalTests.quiet,
            feed: OrderStatusFeed())
        // Records appended together may share a commit; more than a row's worth spans rows.
        var last: UInt64 = 0
        let total = ChangeLog.changesPerRowMax * 2 + 5
        for sequence in 1...total {
            last = journal.record(.order(makeJournalOrder(sequence: UInt64(sequence), key: Self.key, status: .pending, transaction: nil)))
        }
        try await journal.waitDurable(last)
        await journal.close()
        let reader = JournalReader(directory: directory.path, feed: OrderStatusFeed())
        for after in [0, 1, 127, 128, 129, 200, total - 1, total] {
            let page = try reader.changes(after: Int64(after), limit: 50)
            #expect(page.map(\.id) == Array(stride(from: Int64(after + 1), through: Int64(min(total, after + 50)), by: 1)), "after \(after)")
            #expect(try reader.count(after: Int64(after)) == total - after)
        }
        let orders = try Journal.recover(directory: directory.path).orders
        #expect(try reader.changes(after: 0, limit: 1_000).map { String(decoding: $0.data, as: UTF8.self) } == orders.map { "\"\($0.id)\"" })
    }

    @Test func aVersionFourFeedIsCarriedOverUnderItsIDs() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
        do {
            let database = try SQLiteDatabase(path: directory.path + "/flashsale.db", flags: [.readWrite, .create])
            // The schema a version-4 journal made, then its feed: ids 1-3 pruned, 4, 5 and 7
            // kept (6 rolled back), and AUTOINCREMENT having handed out up to 9.
            try database.exec(JournalStore.schemaSQL.replacingOccurrences(of: "('schema_version', \(JournalStore.schemaVersion))", with: "('schema_version', 4)"))
            try database.exec(
                """
                DROP TABLE change_log;
                DROP TABLE admin_events;
                DELETE FROM meta WHERE key = 'next_change_id';
                CREATE TABLE changes (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, at_ms INTEGER NOT NULL, data TEXT NOT NULL);
                INSERT INTO changes VALUES (4, 'order.created', 100, '{"order":"4"}');
                INSERT INTO changes VALUES (5, 'order.paid', 101, '{"order":"5"}');
                INSERT INTO changes VALUES (7, 'coupon.claimed', 103, '{"coupon":"7"}');
                UPDATE sqlite_sequence SET seq = 9 WHERE name = 'changes';
                """)
        }
        let journal = try Journal(
            directory: directory.path, synchronous: .normal, batchMax: 64, logger: ChangeFeedJournalTests.quiet, feed: OrderStatusFeed())
        try await journal.waitDurable(
            journal.record(.order(makeJournalOrder(sequence: 1, key: Self.key, status: .paid, transaction: "t1"))))
        await journal.close()

        let changes = try JournalReader(directory: directory.path, feed: OrderStatusFeed()).changes(after: 0, limit: 10)
        #expect(changes.map(\.id) == [4, 5, 7, 10])
        #expect(changes.map(\.type) == ["order.created", "order.paid", "coupon.claimed", "order.paid"])
        #expect(changes.map(\.atMs).prefix(3) == [100, 101, 103])
        #expect(String(decoding: changes[2].data, as: UTF8.self) == #"{"coupon":"7"}"#)
        let database = try SQLiteDatabase(path: directory.path + "/flashsale.db", flags: [.readOnly])
        #expect(try JournalStore.meta("schema_version", in: database) == JournalStore.schemaVersion)
        let old = try database.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'changes'")
        #expect(try old.step() && old.int64(at: 0) == 0, "the old table is gone")
    }
}
