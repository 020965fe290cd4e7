import Foundation
import InventoryActor
import Logging
import Synchronization
import FlashSaleTestKit
import Testing

@testable import FlashSaleJournal

/// The durable journal: what survives close + recover, tickets, group commit, failing disks,
/// checkpoints.
@Suite struct JournalTests {
    // MARK: Survival of every record kind

    @Test func everyRecordKindSurvivesCloseAndRecover() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open()
        let keyA = LedgerKey(event: "e1", sku: "A1")
        let keyB = LedgerKey(event: "e1", sku: "B2")
        var expected: [Order] = []
        for (index, status) in OrderStatus.allCases.enumerated() {
            let order = makeJournalOrder(sequence: UInt64(index + 1), key: keyA, status: status, transaction: status == .pending ? nil : "t\(index)")
            _ = journal.record(.order(order))
            expected.append(order)
        }
        _ = journal.record(.restock(keyA, delta: 5))
        _ = journal.record(.restock(keyA, delta: -2))
        _ = journal.record(.restock(keyB, delta: 3))
        _ = journal.append(.paused(event: "e1", paused: true))
        _ = journal.append(.paused(event: "e2", paused: true))
        _ = journal.append(.paused(event: "e1", paused: false))
        _ = journal.record(.doublePayment(expected[1], transaction: "x1", atMs: 10))
        let last = journal.record(.doublePayment(expected[1], transaction: "x2", atMs: 11))
        try await journal.waitDurable(last)
        await journal.close()

        let state = try Journal.recover(directory: directory.path)
        #expect(state.orders == expected)
        let restocks = Dictionary(uniqueKeysWithValues: state.restocks.map { ($0.0, $0.1) })
        #expect(restocks == [keyA: 3, keyB: 3])
        #expect(state.pausedEvents == ["e2"])
        #expect(state.doublePayments == 2)
        #expect(state.checkpointSeq == 0)
        #expect(state.lastCheckpointCounters.isEmpty)
    }

    @Test func upsertKeepsLatestStatusAndTransactionButNeverOtherColumns() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open()
        let key = LedgerKey(event: "e1", sku: "A1")
        let created = makeJournalOrder(sequence: 7, key: key, status: .pending, transaction: nil)
        let paid = makeJournalOrder(sequence: 7, key: key, status: .paid, transaction: "t-1")
        // A later record of the same id with other columns changed: only status and txn move.
        let altered = Order(
            id: created.id, key: LedgerKey(event: "other", sku: "X"), user: "mallory", qty: 9, amountFen: 1,
            discountFen: 2, createdAtMs: 3, expiresAtMs: 4, status: .refundPending, transaction: "t-2")
        _ = journal.record(.order(created))
        _ = journal.record(.order(paid))
        try await journal.waitDurable(journal.record(.order(altered)))
        await journal.close()

        let orders = try Journal.recover(directory: directory.path).orders
        #expect(orders.count == 1)
        let expected = makeJournalOrder(sequence: 7, key: key, status: .refundPending, transaction: "t-2")
        #expect(orders.first == expected)
    }

    @Test func orderIDWithHighBitRoundTrips() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open()
        let base = makeJournalOrder(sequence: 1, key: LedgerKey(event: "e1", sku: "A1"), status: .pending, transaction: nil)
        let high = Order(
            id: OrderID(rawValue: UInt64.max - 3), key: base.key, user: base.user, qty: base.qty, amountFen: base.amountFen,
            discountFen: base.discountFen, createdAtMs: base.createdAtMs, expiresAtMs: base.expiresAtMs, status: .paid,
            transaction: "")
        try await journal.waitDurable(journal.record(.order(high)))
        await journal.close()
        #expect(try Journal.recover(directory: directory.path).orders == [high])
    }

    @Test func ordersReadInParallelRangesAreEveryOrderOnceInIDOrder() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open()
        let keys = (0..<40).map { LedgerKey(event: "e\($0 % 3)", sku: "S\($0)") }
        var expected: [Order] = []
        // Sequences count per slot (two SKUs may share one), as the engine numbers them.
        var sequenceBySlot: [Int: UInt64] = [:]
        for round in 1...60 {
            for key in keys {
                let sequence = sequenceBySlot[key.slot, default: 0] + 1
                sequenceBySlot[key.slot] = sequence
                let status = OrderStatus.allCases[(round + key.slot) % OrderStatus.allCases.count]
                expected.append(makeJournalOrder(sequence: sequence, key: key, status: status, transaction: status == .pending ? nil : "t\(round)"))
            }
        }
        // The extremes of the id space: the last range must reach the top, the first the bottom.
        let base = expected[0]
        for raw in [UInt64.max - 3, 1 << 63, UInt64(Int64.max)] {
            expected.append(Order(
                id: OrderID(rawValue: raw), key: base.key, user: "edge", qty: 1, amountFen: 1, discountFen: 0,
                createdAtMs: 0, expiresAtMs: 1, status: .paid, transaction: "edge"))
        }
        var last: UInt64 = 0
        for order in expected { last = journal.record(.order(order)) }
        try await journal.waitDurable(last)
        await journal.close()
        // SQLite orders ids as signed integers, as recovery returns them.
        expected.sort { Int64(bitPattern: $0.id.rawValue) < Int64(bitPattern: $1.id.rawValue) }

        let serial = try Journal.recover(directory: directory.path, parallelFrom: .max, readers: 1).orders
        #expect(serial.count == expected.count)
        #expect(zip(serial, expected).allSatisfy { $0 == $1 })
        for readers in [2, 3, 8] {
            let parallel = try Journal.recover(directory: directory.path, parallelFrom: 1, readers: readers).orders
            #expect(parallel.count == expected.count, "readers: \(readers)")
            // Compared by id first: a failure names the first order out of place, not all 2 403.
            let firstDifference = parallel.indices.first { $0 >= expected.count || parallel[$0] != expected[$0] }
            #expect(firstDifference == nil, "readers: \(readers), first difference at \(firstDifference ?? -1)")
        }
    }

    @Test func recoverOnMissingDirectoryIsEmpty() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-missing-\(UUID().uuidString)").path
        let state = try Journal.recover(directory: path)
        #expect(state.orders.isEmpty)
        #expect(state.restocks.isEmpty)
        #expect(state.pausedEvents.isEmpty)
        #expect(state.doublePayments == 0)
        #expect(state.checkpointSeq == 0)
        #expect(state.lastCheckpointCounters.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func initCreatesMissingDirectories() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let nested = directory.path + "/a/b"
        let journal = try Journal(directory: nested, synchronous: .full, batchMax: 8, logger: Logger(label: "test"))
        try await journal.waitDurable(journal.append(.paused(event: "e1", paused: true)))
        await journal.close()
        #expect(FileManager.default.fileExists(atPath: nested + "/flashsale.db"))
        #expect(try Journal.recover(directory: nested).pausedEvents == ["e1"])
    }

    @Test func reopeningKeepsEarlierRecords() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let key = LedgerKey(event: "e1", sku: "A1")
        let first = try directory.open()
        try await first.waitDurable(first.record(.restock(key, delta: 4)))
        await first.close()
        let second = try directory.open()
        try await second.waitDurable(second.record(.restock(key, delta: 1)))
        await second.close()
        #expect(try Journal.recover(directory: directory.path).restocks.map(\.1) == [5])
    }

    @Test func unknownSchemaVersionIsRefused() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open()
        await journal.close()
        let database = try SQLiteDatabase(path: directory.path + "/flashsale.db", flags: [.readWrite])
        try database.exec("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
        #expect(throws: SQLiteError.self) { try directory.open() }
        #expect(throws: SQLiteError.self) { try Journal.recover(directory: directory.path) }
    }

    // MARK: Tickets and waiting

    @Test func ticketsStartAtOneAndIncreaseInAppendOrder() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open()
        var tickets: [UInt64] = []
        for index in 0..<10 { tickets.append(journal.append(.paused(event: "e\(index)", paused: true))) }
        #expect(tickets == Array(1...10))
        try await journal.waitDurable(0)
        try await journal.waitDurable(tickets[9])
        #expect(journal.durableTicket >= 10)
        // Already durable: returns at once.
        try await journal.waitDurable(tickets[3])
        await journal.close()
    }

    @Test func waitersOutOfTicketOrderAllResume() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open()
        let tickets = (0..<500).map { journal.append(.paused(event: "e\($0)", paused: true)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for ticket in tickets.shuffled() {
                group.addTask { try await journal.waitDurable(ticket) }
            }
            try await group.waitForAll()
        }
        #expect(journal.durableTicket == 500)
        await journal.close()
    }

    @Test func closeFlushesEverythingBuffered() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open(batchMax: 7)
        let key = LedgerKey(event: "e1", sku: "A1")
        for sequence in 1...500 {
            _ = journal.record(.order(makeJournalOrder(sequence: UInt64(sequence), key: key, status: .pending, transaction: nil)))
        }
        await journal.close()
        #expect(journal.durableTicket == 500)
        #expect(try Journal.recover(directory: directory.path).orders.count == 500)
    }

    @Test func appendAfterCloseIsNeverDurable() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open()
        await journal.close()
        let ticket = journal.append(.paused(event: "late", paused: true))
        await #expect(throws: JournalError.closed) { try await journal.waitDurable(ticket) }
        await #expect(throws: JournalError.closed) { try await journal.checkpoint(counters: [], atMs: 0) }
        await journal.close()  // a second close returns at once
        #expect(try Journal.recover(directory: directory.path).pausedEvents.isEmpty)
    }

    // MARK: Group commit

    @Test func concurrentAppendersAreAllDurableAndGrouped() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open(batchMax: 4096)
        let taskCount = 50
        let recordsPerTask = 200
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<taskCount {
                group.addTask {
                    let key = LedgerKey(event: "e1", sku: "S\(task)")
                    for index in 0..<recordsPerTask {
                        let slotSequence = UInt64(task * recordsPerTask + index + 1)
                        let ticket = journal.record(.order(makeJournalOrder(sequence: slotSequence, key: key, status: .pending, transaction: nil)))
                        // Acknowledge every record, as the HTTP layer would.
                        try await journal.waitDurable(ticket)
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = taskCount * recordsPerTask
        #expect(journal.recordsCommitted == total)
        #expect(journal.commitCount < total, "commits did not group: \(journal.commitCount) for \(total) records")
        await journal.close()
        let orders = try Journal.recover(directory: directory.path).orders
        #expect(orders.count == total)
        #expect(Set(orders.map(\.id)).count == total)
    }

    @Test func noTransactionHoldsMoreThanBatchMax() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open(batchMax: 10)
        var last: UInt64 = 0
        for index in 0..<1_000 { last = journal.append(.paused(event: "e\(index)", paused: true)) }
        try await journal.waitDurable(last)
        #expect(journal.recordsCommitted == 1_000)
        #expect(journal.commitCount >= 100)
        await journal.close()
    }

    // MARK: Long runs

    /// After 200 000 commits the observer is called at the depth of the first call, and the
    /// journal closes cleanly. The observer closure used to be read out of a `Mutex` at every
    /// commit, which wrapped it in one more reabstraction thunk each time: the Nth call walked N
    /// thunks (CPU per commit grew with the daemon's age) and releasing the chain at exit
    /// overflowed the stack. Checked every 1 000 commits, so a growing depth fails at once.
    @Test func commitObserverStaysAtConstantDepthOverLongRuns() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open(batchMax: 1)
        let seen = Mutex<(calls: Int, firstDepth: Int, deepest: Int)>((0, 0, 0))
        journal.setCommitObserver { _, _ in
            let depth = Thread.callStackReturnAddresses.count
            seen.withLock { seen in
                if seen.calls == 0 { seen.firstDepth = depth }
                seen.calls += 1
                seen.deepest = max(seen.deepest, depth)
            }
        }
        let batches = 200_000
        var appended = 0
        while appended < batches {
            var last: UInt64 = 0
            for _ in 0..<1_000 {
                last = journal.append(.paused(event: "e1", paused: appended % 2 == 0))
                appended += 1
            }
            try await journal.waitDurable(last)
            let (calls, firstDepth, deepest) = seen.withLock { ($0.calls, $0.firstDepth, $0.deepest) }
            try #require(deepest == firstDepth, "observer depth grew from \(firstDepth) to \(deepest) frames in \(calls) commits")
        }
        #expect(journal.commitCount == batches)
        #expect(seen.withLock { $0.calls } == batches)
        journal.setCommitObserver(nil)
        await journal.close()
        #expect(try Journal.recover(directory: directory.path).pausedEvents.isEmpty)
    }

    // MARK: Failing disk

    /// Fail-stop: a failed commit drops its batch and everything queued behind it, answers
    /// their waiters `unavailable` at once and forever (even after later commits succeed),
    /// drops what is appended until `resume()`, and retries nothing by itself: a record
    /// answered `unavailable` never reaches the disk. (Before, the batch was retried and
    /// committed once the disk recovered: a request answered 503 became a real change.)
    @Test func aFailedCommitDropsItsBatchAndEverythingBehindItUntilResumed() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let failing = Atomic<Bool>(true)
        let log = CapturedLog()
        let journal = try Journal(
            directory: directory.path, synchronous: .normal, batchMax: 64, logger: log.logger,
            faultInjector: { failing.load(ordering: .acquiring) ? SQLiteError(code: 13, message: "database or disk is full") : nil })
        let key = LedgerKey(event: "e1", sku: "A1")
        let first = journal.record(.order(makeJournalOrder(sequence: 1, key: key, status: .pending, transaction: nil)))
        do {
            try await journal.waitDurable(first)
            Issue.record("waitDurable succeeded while the disk is failing")
        } catch {
            guard case .unavailable(let message) = error else { throw error }
            #expect(message.contains("disk is full"))
        }
        #expect(!journal.isHealthy)
        #expect(!journal.acceptsWrites)
        #expect(journal.durableTicket == 0)
        #expect(await journal.failed())

        // Records appended while failed are dropped; their waiters fail at once.
        let second = journal.record(.order(makeJournalOrder(sequence: 1, key: key, status: .paid, transaction: "t1")))
        await #expect(throws: JournalError.self) { try await journal.waitDurable(second) }
        await #expect(throws: JournalError.self) { try await journal.checkpoint(counters: [], atMs: 0) }
        await #expect(throws: JournalError.self) { try await journal.probe() }
        #expect(log.count(level: .error) == 1, "one line for the failure: \(log.messages)")

        // The disk heals: nothing is retried; a probe commits, then resume() lets new records in.
        failing.store(false, ordering: .releasing)
        #expect(!journal.isHealthy)
        try await journal.probe()
        journal.resume()
        #expect(journal.isHealthy)
        let third = journal.record(.restock(key, delta: 5))
        try await journal.waitDurable(third)
        #expect(journal.durableTicket >= third)
        // The dropped tickets stay failed, though later tickets are durable.
        await #expect(throws: JournalError.self) { try await journal.waitDurable(first) }
        await #expect(throws: JournalError.self) { try await journal.waitDurable(second) }
        await journal.close()

        let state = try Journal.recover(directory: directory.path)
        #expect(state.orders.isEmpty, "an order answered unavailable reached the disk")
        #expect(state.restocks.map(\.1) == [5])
    }

    /// A disk that fails again and again costs the journal a bounded memory: one dropped-ticket
    /// range per failure, at most `droppedRangesMax` of them; the newest still fail their waiters.
    @Test func repeatedFailuresKeepABoundedListOfDroppedTickets() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let failing = FaultFlag()
        let journal = try Journal(
            directory: directory.path, synchronous: .normal, batchMax: 64, logger: CapturedLog().logger,
            faultInjector: { failing.isOn ? SQLiteError(code: 13, message: "database or disk is full") : nil })
        var lastDropped: UInt64 = 0
        for _ in 0..<(Journal.droppedRangesMax + 16) {
            failing.set(true)
            lastDropped = journal.append(.paused(event: "e1", paused: true))
            await #expect(throws: JournalError.self) { try await journal.waitDurable(lastDropped) }
            failing.set(false)
            try await journal.probe()
            journal.resume()
        }
        #expect(journal.droppedRangeCount == Journal.droppedRangesMax)
        try await journal.waitDurable(journal.append(.paused(event: "e2", paused: true)))
        await #expect(throws: JournalError.self) { try await journal.waitDurable(lastDropped) }
        await journal.close()
    }

    @Test func closeWhileFailingGivesUpInsteadOfHanging() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try Journal(
            directory: directory.path, synchronous: .normal, batchMax: 64, logger: CapturedLog().logger,
            faultInjector: { SQLiteError(code: 10, message: "disk I/O error") })
        let ticket = journal.append(.paused(event: "e1", paused: true))
        await #expect(throws: JournalError.self) { try await journal.waitDurable(ticket) }
        await journal.close()
        await #expect(throws: JournalError.self) { try await journal.waitDurable(ticket) }
        #expect(await journal.failed() == true)
        #expect(try Journal.recover(directory: directory.path).pausedEvents.isEmpty)
    }

    // MARK: Checkpoints

    @Test func checkpointIncrementsSeqSurvivesReopenAndStoresCounters() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let keyA = LedgerKey(event: "e1", sku: "A1")
        let keyB = LedgerKey(event: "e1", sku: "B2")
        let journal = try directory.open()
        #expect(journal.checkpointSeq == 0)
        let ticket = journal.record(.order(makeJournalOrder(sequence: 1, key: keyA, status: .pending, transaction: nil)))
        let first = try await journal.checkpoint(
            counters: [(keyA, StockCounters(total: 10, available: 9, reserved: 1, sold: 0))], atMs: 1_000)
        // Records appended before the checkpoint are committed before it.
        #expect(journal.durableTicket >= ticket)
        #expect(first == 1)
        let countersB = StockCounters(total: 5, available: 2, reserved: 1, sold: 2)
        let countersA = StockCounters(total: 10, available: 8, reserved: 1, sold: 1)
        let second = try await journal.checkpoint(counters: [(keyA, countersA), (keyB, countersB)], atMs: 2_000)
        #expect(second == 2)
        #expect(journal.checkpointSeq == 2)
        // TRUNCATE leaves an empty WAL when no reader holds it.
        let walSize = try FileManager.default.attributesOfItem(atPath: directory.path + "/flashsale.db-wal")[.size] as? Int
        #expect(walSize == 0)
        await journal.close()

        let state = try Journal.recover(directory: directory.path)
        #expect(state.checkpointSeq == 2)
        #expect(state.lastCheckpointCounters == [keyA: countersA, keyB: countersB])
        #expect(state.orders.count == 1)

        let reopened = try directory.open()
        #expect(reopened.checkpointSeq == 2)
        #expect(try await reopened.checkpoint(counters: [(keyB, countersB)], atMs: 3_000) == 3)
        await reopened.close()
        let third = try Journal.recover(directory: directory.path)
        #expect(third.checkpointSeq == 3)
        #expect(third.lastCheckpointCounters == [keyB: countersB])
    }

    @Test func checkpointUnderConcurrentAppendsWaitsForEarlierRecords() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open(batchMax: 16)
        let key = LedgerKey(event: "e1", sku: "A1")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for index in 0..<2_000 { _ = journal.record(.restock(key, delta: Int64(index % 3))) }
            }
            group.addTask {
                for round in 1...5 {
                    let before = journal.append(.paused(event: "c\(round)", paused: true))
                    let seq = try await journal.checkpoint(counters: [], atMs: Int64(round))
                    #expect(seq == Int64(round))
                    #expect(journal.durableTicket >= before)
                }
            }
            try await group.waitForAll()
        }
        await journal.close()
        let state = try Journal.recover(directory: directory.path)
        #expect(state.checkpointSeq == 5)
        #expect(state.pausedEvents == ["c1", "c2", "c3", "c4", "c5"])
    }

    @Test func recoverReadsWhileTheJournalIsOpen() async throws {
        let directory = JournalTestDirectory()
        defer { directory.remove() }
        let journal = try directory.open()
        try await journal.waitDurable(journal.append(.paused(event: "e1", paused: true)))
        #expect(try Journal.recover(directory: directory.path).pausedEvents == ["e1"])
        await journal.close()
    }
}

// MARK: - Helpers (private: other test files have their own)

/// A fresh temporary directory for one journal test.
struct JournalTestDirectory {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-journal-\(UUID().uuidString)").path

    /// A journal in this directory, logging nowhere.
    func open(batchMax: Int = 256) throws -> Journal {
        try Journal(directory: path, synchronous: .normal, batchMax: batchMax, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// An order of `key` with fixed fields but for its sequence, status and transaction.
func makeJournalOrder(sequence: UInt64, key: LedgerKey, status: OrderStatus, transaction: String?) -> Order {
    Order(
        id: OrderID(sequence: sequence, slot: key.slot), key: key, user: "u\(sequence % 17)", qty: 2, amountFen: 1_980,
        discountFen: 100, createdAtMs: 1_700_000_000_000 + Int64(sequence), expiresAtMs: 1_700_000_900_000 + Int64(sequence),
        status: status, transaction: transaction)
}
