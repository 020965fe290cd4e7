// The durable journal: order records appended by the shards and committed to SQLite (WAL) by
// the writer thread in group commits. A fresh journal in a new temp directory per iteration,
// opened before the measurement starts and closed after it stops, so every iteration writes
// the same 1 000 orders into an empty database. `batchMax` is the daemon's default.
import Benchmark
import FlashSale
import FlashSaleJournal
import Foundation
import InventoryActor
import Logging

func journalBenchmarks() {
    let records = 1_000
    let configuration = Benchmark.Configuration(metrics: MetricSets.system)
    let key = LedgerKey(event: "bench", sku: "S1")
    let orders = (0..<records).map { index in
        Order(
            id: OrderID(sequence: UInt64(index + 1), slot: key.slot), key: key, user: "u\(index)", qty: 1, amountFen: 1_980,
            discountFen: 0, createdAtMs: 1_700_000_000_000 + Int64(index), expiresAtMs: 1_700_000_900_000 + Int64(index),
            status: .pending, transaction: nil)
    }

    // What a shard pays inside its actor: a mutex-guarded append, no I/O.
    Benchmark("Journal: append 1 000 orders (the caller's cost)", configuration: configuration) { benchmark in
        let journal = try JournalFixture(synchronous: .full)
        benchmark.startMeasurement()
        var ticket: UInt64 = 0
        for index in benchmark.scaledIterations {
            ticket = journal.journal.record(.order(orders[index % records]))
        }
        benchmark.stopMeasurement()
        try await journal.journal.waitDurable(ticket)
        await journal.close()
    }

    for synchronous in [JournalSynchronous.full, .normal] {
        Benchmark("Journal: append + commit 1 000 orders, synchronous=\(synchronous.rawValue)", configuration: configuration) { benchmark in
            let journal = try JournalFixture(synchronous: synchronous)
            benchmark.startMeasurement()
            var ticket: UInt64 = 0
            for index in benchmark.scaledIterations {
                ticket = journal.journal.record(.order(orders[index % records]))
            }
            try await journal.journal.waitDurable(ticket)
            benchmark.stopMeasurement()
            await journal.close()
        }
    }

    // The engine's shape: each request waits for its own record; commits group the waiters.
    Benchmark("Journal: 1 000 concurrent tasks, append + wait each, synchronous=full", configuration: configuration) { benchmark in
        let journal = try JournalFixture(synchronous: .full)
        benchmark.startMeasurement()
        try await withThrowingDiscardingTaskGroup { group in
            for index in benchmark.scaledIterations {
                let order = orders[index % records]
                group.addTask {
                    try await journal.journal.waitDurable(journal.journal.record(.order(order)))
                }
            }
        }
        benchmark.stopMeasurement()
        await journal.close()
    }
}

/// A journal in a new temp directory, logging nowhere; `close()` removes the directory.
private struct JournalFixture: Sendable {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-bench-\(UUID().uuidString)").path
    let journal: Journal

    init(synchronous: JournalSynchronous) throws {
        journal = try Journal(
            directory: directory, synchronous: synchronous, batchMax: SaleConfig.defaultJournal.batchMax,
            logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func close() async {
        await journal.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
