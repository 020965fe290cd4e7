import Foundation
import Logging
import FlashSaleTestKit
import Testing

@testable import FlashSaleJournal
@testable import InventoryActor

/// Groups, coupons and the new order columns in the journal (schema version 2).
@Suite struct JournalClaimsTests {
    static let key = LedgerKey(event: "g1", sku: "G1")

    static func open(_ directory: TemporaryDirectory) throws -> Journal {
        try Journal(directory: directory.path, synchronous: .normal, batchMax: 64, logger: Logger(label: "test"))
    }

    @Test func groupsCouponsAndOrderColumnsRoundTrip() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try Self.open(directory)
        let groupID = GroupID(sequence: 3, slot: Self.key.slot)
        var group = Group(id: groupID, key: Self.key, size: 3, priceFen: 5_900, leader: "u1", createdAtMs: 10, expiresAtMs: 20, status: .open)
        let code = CouponCode(slot: CouponCode.slot(batch: "b1"), high: 0xdead_beef, low: 42)
        let coupon = Coupon(code: code, batch: "b1", owner: "u1", clientIP: "10.0.0.9", valueFen: 500, minSpendFen: 2_000, claimedAtMs: 5, expiresAtMs: 50)
        let order = Order(
            id: OrderID(sequence: 1, slot: Self.key.slot), key: Self.key, user: "u1", qty: 1, amountFen: 5_900, discountFen: 0,
            createdAtMs: 10, expiresAtMs: 20, status: .pending, transaction: nil, group: groupID, coupon: code.description)
        _ = journal.record(.group(group))
        _ = journal.record(.coupon(coupon))
        _ = journal.record(.order(order))
        group.status = .formed
        try await journal.waitDurable(journal.record(.group(group)))
        await journal.close()

        let state = try Journal.recover(directory: directory.path)
        #expect(state.groups == [group])
        #expect(state.coupons == [coupon])
        #expect(state.orders == [order])
    }

    @Test func versionOneFileGainsGroupsAndCoupons() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // A file as the version-1 schema left it: orders without group_id and coupon.
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
        let database = try SQLiteDatabase(path: directory.path + "/flashsale.db", flags: [.readWrite, .create])
        try database.exec(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value);
            INSERT INTO meta (key, value) VALUES ('schema_version', 1), ('checkpoint_seq', 0);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, event TEXT NOT NULL, sku TEXT NOT NULL, user TEXT NOT NULL,
                qty INTEGER NOT NULL, amount INTEGER NOT NULL, discount INTEGER NOT NULL, created_ms INTEGER NOT NULL,
                expires_ms INTEGER NOT NULL, status INTEGER NOT NULL, txn TEXT);
            INSERT INTO orders VALUES (1025, 'e1', 'A1', 'u1', 1, 990, 0, 1, 2, 1, 't1');
            """)
        let journal = try Self.open(directory)
        await journal.close()
        let state = try Journal.recover(directory: directory.path)
        #expect(state.orders.count == 1 && state.orders[0].status == .paid && state.orders[0].group == nil && state.orders[0].coupon == nil)
        #expect(try JournalStore.meta("schema_version", in: SQLiteDatabase(path: directory.path + "/flashsale.db", flags: [.readWrite])) == JournalStore.schemaVersion)
    }

    @Test func versionTwoFileBindsIdempotentAnswersFromNowOn() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // A version-3 file turned back into what version 2 left: answers without a request digest.
        await (try Self.open(directory)).close()
        let database = try SQLiteDatabase(path: directory.path + "/flashsale.db", flags: [.readWrite])
        try database.exec(
            """
            ALTER TABLE idempotency DROP COLUMN request_digest;
            UPDATE meta SET value = 2 WHERE key = 'schema_version';
            INSERT INTO idempotency (user, key, status, body, at_ms) VALUES ('u1', 'k1', 201, '{}', 5);
            """)
        let journal = try Self.open(directory)
        let bound = IdempotentAnswer(user: "u2", key: "k2", status: 201, body: Array("{}".utf8), atMs: 6, requestDigest: "abc")
        try await journal.waitDurable(journal.append(.idempotentAnswer(bound)))
        await journal.close()
        let state = try Journal.recover(directory: directory.path)
        // The old answer matches any request (nil digest); the new one keeps its binding.
        #expect(state.idempotentAnswers.map(\.requestDigest) == [nil, "abc"])
        #expect(try JournalStore.meta("schema_version", in: database) == JournalStore.schemaVersion)
    }
}
