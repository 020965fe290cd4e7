import Synchronization
import Testing

@testable import FlashSale
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
