import Synchronization
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal
@testable import InventoryActor

/// Changes that must be durable together reach the journal as one unit, and the journal never
/// splits a unit across transactions (a kill between two commits once left formed orders in an
/// open group, and recovery then refused to start).
@Suite struct AtomicUnitTests {
    /// Remembers every call a shard makes, as units.
    final class UnitRecorder: ChangeSink {
        let units = Mutex<[[InventoryChange]]>([])
        func record(_ change: InventoryChange) -> UInt64 { recordUnit([change]) }
        func recordUnit(_ changes: [InventoryChange]) -> UInt64 {
            units.withLock { $0.append(changes); return UInt64($0.count) }
        }
        let attachments = Mutex<[Int: String]>([:])
        func record(_ change: InventoryChange, attachment: any Sendable) -> UInt64 {
            let ticket = recordUnit([change])
            attachments.withLock { $0[Int(ticket) - 1] = attachment as? String }
            return ticket
        }
    }

    /// An idempotent order's answer is recorded with the order, as one unit: a crash never
    /// leaves the order on disk without the answer its retry must get (a second order).
    @Test func anOrdersAttachedAnswerIsInTheOrdersUnit() async {
        let sink = UnitRecorder()
        let shard = InventoryShard(index: 0, sink: sink)
        let key = LedgerKey(event: "e", sku: "A")
        await shard.addLedgers([(key, 10, 1)])
        let request = ReserveRequest(key: key, user: "u1", qty: 1, amountFen: 100, discountFen: 0, nowMs: 0, expiresAtMs: 60_000)
        guard case .reserved(let order) = await shard.reserve(request, attach: { order in "answer for \(order.id)" }).result else {
            Issue.record("not reserved")
            return
        }
        #expect(sink.units.withLock { $0 } == [[.order(order)]])
        #expect(sink.attachments.withLock { $0 } == [0: "answer for \(order.id)"])
    }

    /// The journal keeps a change and its attached record in one unit (never split across
    /// transactions), and both come back.
    @Test func theJournalCommitsAnAttachedRecordWithItsChange() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try Journal(directory: directory.path, synchronous: .normal, batchMax: 1, logger: TestEngine.logger)
        let key = LedgerKey(event: "e", sku: "A")
        let order = Order(
            id: OrderID(sequence: 1, slot: key.slot), key: key, user: "u1", qty: 1, amountFen: 100, discountFen: 0, createdAtMs: 1,
            expiresAtMs: 2, status: .pending, transaction: nil, group: nil, coupon: nil)
        let answer = IdempotentAnswer(user: "u1", key: "k", status: 201, body: Array("{}".utf8), atMs: 1, requestDigest: "d")
        let ticket = journal.record(.order(order), attachment: JournalRecord.idempotentAnswer(answer))
        #expect(ticket == 2, "two records, one ticket to wait on")
        try await journal.waitDurable(ticket)
        // batch_max 1 and still one transaction: the unit is taken whole.
        #expect(journal.commitCount == 1)
        await journal.close()
        let state = try Journal.recover(directory: directory.path)
        #expect(state.orders == [order] && state.idempotentAnswers == [answer])
    }

    @Test func groupFormationIsOneUnitWithTheCompletingPayment() async {
        let sink = UnitRecorder()
        let shard = InventoryShard(index: 0, sink: sink)
        let key = LedgerKey(event: "g", sku: "G1")
        await shard.addLedgers([(key, 10, 1)])
        let open = OpenGroupRequest(key: key, user: "u1", size: 2, priceFen: 100, nowMs: 0, paymentDeadlineMs: 60_000, groupDeadlineMs: 60_000)
        guard case .joined(let view, let leader) = await shard.openGroup(open).result else { Issue.record("open"); return }
        guard case .joined(_, let member) = await shard.joinGroup(view.group.id, user: "u2", nowMs: 1, paymentDeadlineMs: 60_000).result else {
            Issue.record("join")
            return
        }
        _ = await shard.pay(leader.id, transaction: "t1", amountFen: 100, nowMs: 2)
        let before = sink.units.withLock { $0.count }
        _ = await shard.pay(member.id, transaction: "t2", amountFen: 100, nowMs: 3)
        let units = sink.units.withLock { Array($0.dropFirst(before)) }
        #expect(units.count == 1, "the completing payment is one unit: \(units)")
        let unit = units.first ?? []
        let formedOrders = Set(unit.compactMap { change -> OrderID? in
            if case .order(let order) = change, order.status == .formed { return order.id }
            return nil
        })
        #expect(formedOrders == [leader.id, member.id])
        #expect(unit.contains { if case .group(let group) = $0 { return group.status == .formed } else { return false } })
    }

    @Test func queueTakesWholeUnitsEvenPastTheLimit() {
        var queue = RecordQueue()
        let record = JournalRecord.paused(event: "e", paused: true)
        queue.append(unit: [record, record, record])
        queue.append(unit: [record])
        queue.append(unit: [record, record])
        var batch: [JournalRecord] = []
        #expect(queue.take(upTo: 2, into: &batch) == 3, "a unit of 3 is not split by a limit of 2")
        batch.removeAll()
        #expect(queue.take(upTo: 2, into: &batch) == 3, "the single, then the whole pair")
        #expect(queue.count == 0)
    }
}
