// The synchronous stock core: one `StockLedger`, and one `OrderBook` (ledger + order record +
// expiry entry), with no actor and no task. A fresh ledger or book per iteration, built before
// the measurement starts, so every iteration sees the same state.
import Benchmark
import InventoryActor

func ledgerBenchmarks() {
    let claims = 1_000
    // Short user ids (small strings): the per-user table, not string storage, is measured.
    let users = (0..<claims).map { "u\($0)" }
    let key = LedgerKey(event: "bench", sku: "S1")
    let requests = users.map {
        ReserveRequest(key: key, user: $0, qty: 1, amountFen: 1_980, discountFen: 0, nowMs: 0, expiresAtMs: 900_000)
    }

    Benchmark("Ledger: StockLedger reserve + commit") { benchmark in
        var ledger = StockLedger(total: Int64(claims), limitPerUser: 1)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            let outcome = ledger.reserve(user: users[index % claims], qty: 1)
            precondition(outcome == .reserved, "ledger refused a claim")
            ledger.commit(qty: 1)
        }
        benchmark.stopMeasurement()
        precondition(ledger.counters.sold == Int64(claims), "not every claim was sold")
    }

    Benchmark("Ledger: StockLedger reserve + release") { benchmark in
        var ledger = StockLedger(total: Int64(claims), limitPerUser: 1)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            let user = users[index % claims]
            let outcome = ledger.reserve(user: user, qty: 1)
            precondition(outcome == .reserved, "ledger refused a claim")
            ledger.release(user: user, qty: 1)
        }
        benchmark.stopMeasurement()
        precondition(ledger.counters.available == Int64(claims), "a release was lost")
    }

    // Most requests of a sale arrive after the stock is gone.
    Benchmark("Ledger: StockLedger reserve, sold out") { benchmark in
        var ledger = StockLedger(total: 0, limitPerUser: 1)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(ledger.reserve(user: users[index % claims], qty: 1))
        }
    }

    Benchmark("Ledger: OrderBook reserve") { benchmark in
        var book = OrderBook()
        book.addLedger(key, total: Int64(claims), limitPerUser: 1)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            guard case .reserved = book.reserve(requests[index % claims]) else { preconditionFailure("book refused a claim") }
        }
        benchmark.stopMeasurement()
        precondition(book.orderCount == claims, "not every claim made an order")
    }

    Benchmark("Ledger: OrderBook reserve + pay") { benchmark in
        var book = OrderBook()
        book.addLedger(key, total: Int64(claims), limitPerUser: 1)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            guard case .reserved(let order) = book.reserve(requests[index % claims]) else { preconditionFailure("book refused a claim") }
            guard case .paid = book.pay(order.id, transaction: "t1", amountFen: order.amountFen, nowMs: 1) else {
                preconditionFailure("book refused a payment")
            }
        }
        benchmark.stopMeasurement()
        precondition(book.counters(key)?.sold == Int64(claims), "not every order was sold")
    }
}
