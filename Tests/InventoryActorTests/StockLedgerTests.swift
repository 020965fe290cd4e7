import InventoryActor
import Testing

/// Table tests of the ledger: each row is a step, its expected outcome, and the counters after.
@Suite struct StockLedgerTests {
    enum Step {
        case reserve(String, Int32, StockLedger.ReserveOutcome)
        case commit(Int32)
        case release(String, Int32)
        case retake(String, Int32, Bool)
        case restock(Int64, Bool)
    }

    /// (total, limit, steps with the counters (available, reserved, sold) after each).
    static let tables: [(String, Int64, Int32, [(Step, (Int64, Int64, Int64))])] = [
        ("reserve within stock and limit", 5, 2, [
            (.reserve("u1", 2, .reserved), (3, 2, 0)),
            (.reserve("u2", 1, .reserved), (2, 3, 0)),
        ]),
        ("limit is checked before stock", 1, 2, [
            (.reserve("u1", 1, .reserved), (0, 1, 0)),
            (.reserve("u1", 2, .limitExceeded), (0, 1, 0)),
            (.reserve("u2", 1, .soldOut), (0, 1, 0)),
        ]),
        ("second claim by same user past limit is limit exceeded", 10, 1, [
            (.reserve("u1", 1, .reserved), (9, 1, 0)),
            (.reserve("u1", 1, .limitExceeded), (9, 1, 0)),
        ]),
        ("sold out when fewer units than asked", 2, 3, [
            (.reserve("u1", 3, .soldOut), (2, 0, 0)),
            (.reserve("u1", 2, .reserved), (0, 2, 0)),
        ]),
        ("commit moves reserved to sold", 3, 3, [
            (.reserve("u1", 2, .reserved), (1, 2, 0)),
            (.commit(2), (1, 0, 2)),
        ]),
        ("release gives stock and the user's quota back", 1, 1, [
            (.reserve("u1", 1, .reserved), (0, 1, 0)),
            (.release("u1", 1), (1, 0, 0)),
            (.reserve("u1", 1, .reserved), (0, 1, 0)),
        ]),
        ("retake needs available stock", 1, 1, [
            (.reserve("u1", 1, .reserved), (0, 1, 0)),
            (.release("u1", 1), (1, 0, 0)),
            (.reserve("u2", 1, .reserved), (0, 1, 0)),
            (.retake("u1", 1, false), (0, 1, 0)),
            (.restock(1, true), (1, 1, 0)),
            (.retake("u1", 1, true), (0, 1, 1)),
        ]),
        ("restock removes only available units", 3, 3, [
            (.reserve("u1", 2, .reserved), (1, 2, 0)),
            (.restock(-2, false), (1, 2, 0)),
            (.restock(-1, true), (0, 2, 0)),
            (.restock(5, true), (5, 2, 0)),
        ]),
    ]

    @Test(arguments: tables.indices)
    func ledgerTable(_ index: Int) {
        let (name, total, limit, rows) = Self.tables[index]
        var ledger = StockLedger(total: total, limitPerUser: limit)
        var expectedTotal = total
        for (row, (step, after)) in rows.enumerated() {
            switch step {
            case .reserve(let user, let qty, let expected):
                #expect(ledger.reserve(user: user, qty: qty) == expected, "\(name) row \(row)")
            case .commit(let qty): ledger.commit(qty: qty)
            case .release(let user, let qty): ledger.release(user: user, qty: qty)
            case .retake(let user, let qty, let expected):
                #expect(ledger.retake(user: user, qty: qty) == expected, "\(name) row \(row)")
            case .restock(let delta, let expected):
                let done = ledger.restock(delta: delta)
                #expect(done == expected, "\(name) row \(row)")
                if done { expectedTotal += delta }
            }
            let counters = ledger.counters
            #expect(
                counters == StockCounters(total: expectedTotal, available: after.0, reserved: after.1, sold: after.2),
                "\(name) row \(row): \(counters)")
        }
    }

    @Test func restockThatWouldOverflowChangesNothing() {
        var ledger = StockLedger(total: 5, limitPerUser: 1)
        let grew = ledger.restock(delta: .max)
        let shrank = ledger.restock(delta: .min)
        #expect(!grew && !shrank)
        #expect(ledger.counters == StockCounters(total: 5, available: 5, reserved: 0, sold: 0))
    }

    @Test func quantityOfUserDropsToZeroAndIsForgotten() {
        var ledger = StockLedger(total: 5, limitPerUser: 5)
        _ = ledger.reserve(user: "u1", qty: 3)
        #expect(ledger.quantity(of: "u1") == 3)
        ledger.release(user: "u1", qty: 3)
        #expect(ledger.quantity(of: "u1") == 0)
        #expect(ledger.holderCount == 0)
    }

    @Test func restoreGrowsTotalWhenConfigOffersLessThanHeld() {
        var ledger = StockLedger(total: 1, limitPerUser: 5)
        #expect(ledger.restoreHeld(user: "u1", qty: 3, sold: true) == 2)
        #expect(ledger.counters == StockCounters(total: 3, available: 0, reserved: 0, sold: 3))
    }
}
