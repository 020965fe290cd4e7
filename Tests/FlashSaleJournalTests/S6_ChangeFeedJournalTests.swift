import FlashSaleTestKit
import Foundation
import Logging
import Testing

@testable import FlashSaleJournal
@testable import InventoryActor

/// A feed that reports every order record as `order.<status>`, its data the order id.
struct OrderStatusFeed: ChangeFeedRenderer {
    func eventTime(of change: InventoryChange) -> Int64? {
        guard case .order(let order) = change else { return nil }
        return order.createdAtMs
    }

    func event(for change: InventoryChange) -> (type: String, data: [UInt8]) {
        guard case .order(let order) = change else { return ("other", Array("null".utf8)) }
        return ("order.\(order.status)", Array("\"\(order.id)\"".utf8))
    }
}

/// The change feed in the journal (§6): written in the change's own transaction,
/// numbered strictly upward for the life of the file, pruned a bounded slice at a time.
@Suite struct ChangeFeedJournalTests {
    static let key = LedgerKey(event: "e1", sku: "A1")
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func open(_ directory: JournalTestDirectory, failing: FaultFlag = FaultFlag()) throws -> Journal {
        let injector: @Sendable () -> SQLiteError? = {
            failing.isOn ? SQLiteError(code: 13, message: "database or disk is full") : nil
        }
        return try Journal(
            directory: directory.path, synchronous: .normal, batchMax: 64, logger: quiet, feed: OrderStatusFeed(),
            faultInjector: injector)
    }

    @Test func aChangeAndItsEventCommitTogetherOrNotAtAll() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let failing = FaultFlag()
        failing.set(true)
        let journal = try Self.open(directory, failing: failing)
        let dropped = journal.record(.order(makeJournalOrder(sequence: 1, key: Self.key, status: .pending, transaction: nil)))
        await #expect(throws: JournalError.self) { try await journal.waitDurable(dropped) }
        failing.set(false)
        try await journal.probe()
        journal.resume()
        let kept = journal.record(.order(makeJournalOrder(sequence: 2, key: Self.key, status: .pending, transaction: nil)))
        try await journal.waitDurable(kept)
        await journal.close()

        let state = try Journal.recover(directory: directory.path)
        let reader = JournalReader(directory: directory.path, feed: OrderStatusFeed())
        let changes = try reader.changes(after: 0, limit: 10)
        #expect(state.orders.map(\.id) == [makeJournalOrder(sequence: 2, key: Self.key, status: .pending, transaction: nil).id])
        #expect(changes.map(\.type) == ["order.pending"], "the failed commit left neither its order nor its event")
        #expect(changes.map { String(decoding: $0.data, as: UTF8.self) } == ["\"\(state.orders[0].id)\""])
    }

    @Test func idsIncreaseStrictlyAcrossRestartsAndPruning() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        var journal = try Self.open(directory)
        for sequence in 1...3 {
            _ = journal.record(.order(makeJournalOrder(sequence: UInt64(sequence), key: Self.key, status: .pending, transaction: nil)))
        }
        // Everything goes: the table is empty, yet the next id is not reused.
        try await journal.waitDurable(journal.append(.pruneChanges(beforeMs: .max, limit: 100)))
        await journal.close()
        #expect(try JournalReader(directory: directory.path, feed: OrderStatusFeed()).changes(after: 0, limit: 10).isEmpty)

        journal = try Self.open(directory)
        let paid = journal.record(.order(makeJournalOrder(sequence: 1, key: Self.key, status: .paid, transaction: "t1")))
        try await journal.waitDurable(paid)
        await journal.close()
        let changes = try JournalReader(directory: directory.path, feed: OrderStatusFeed()).changes(after: 0, limit: 10)
        #expect(changes.map(\.id) == [4])
        #expect(changes.map(\.type) == ["order.paid"])
    }

    @Test func aPruneDeletesAtMostItsLimitOldestFirst() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try Self.open(directory)
        // One commit each: ten rows of the change log.
        for sequence in 1...10 {
            try await journal.waitDurable(
                journal.record(.order(makeJournalOrder(sequence: UInt64(sequence), key: Self.key, status: .pending, transaction: nil))))
        }
        // Rows go whole and oldest first, never more events than the limit (at least one row).
        try await journal.waitDurable(journal.append(.pruneChanges(beforeMs: .max, limit: 4)))
        let reader = JournalReader(directory: directory.path, feed: OrderStatusFeed())
        #expect(try reader.changes(after: 0, limit: 100).map(\.id) == Array(5...10))
        // Nothing older than the cut: nothing goes.
        try await journal.waitDurable(journal.append(.pruneChanges(beforeMs: 0, limit: 100)))
        #expect(try reader.changes(after: 0, limit: 100).count == 6)
        #expect(try reader.count(after: 7) == 3)
        await journal.close()
    }

    @Test func webhookCursorsAndParkedDeliveriesSurviveARestart() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try Self.open(directory)
        let parked = ParkedDelivery(url: "http://127.0.0.1:9/a", changeID: 2, type: "order.paid", attempts: 7, lastError: "HTTP 500", atMs: 5)
        _ = journal.append(.webhookDelivered(url: "http://127.0.0.1:9/a", through: 3))
        // A cursor never moves back (a late record of an older position changes nothing).
        _ = journal.append(.webhookDelivered(url: "http://127.0.0.1:9/a", through: 1))
        try await journal.waitDurable(journal.append(.webhookParked(parked)))
        await journal.close()
        let state = try Journal.recover(directory: directory.path)
        #expect(state.webhookCursors == ["http://127.0.0.1:9/a": 3])
        #expect(state.parkedDeliveries == [parked])
    }
}
