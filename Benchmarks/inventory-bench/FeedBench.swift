// What the change feed costs the journal: the same order records committed with and without
// the feed (each record also rendered as its event and inserted into `changes`), in rounds
// that alternate, synchronous=full as in the daemon. `inventory-bench --feed`.

import FlashSale
import FlashSaleJournal
import Foundation
import InventoryActor
import Logging
import Synchronization

enum FeedBench {
    /// Commits `batches` batches of `batchSize` new orders; the median commit time (fsync
    /// included) of the full batches, and the writer's time per record.
    static func commits(feed: Bool, batches: Int, batchSize: Int) async throws -> (medianMs: Double, perRecordUs: Double) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("feed-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let journal = try Journal(
            directory: directory, synchronous: .full, batchMax: 4_096, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }),
            feed: feed ? ChangeFeedJSON(clock: SystemClock()) : nil)
        let durations = Mutex<[(records: Int, duration: Duration)]>([])
        journal.setCommitObserver { records, duration in durations.withLock { $0.append((records, duration)) } }
        let key = LedgerKey(event: "bench", sku: "S1")
        var sequence: UInt64 = 0
        for _ in 0..<batches {
            var last: UInt64 = 0
            for _ in 0..<batchSize {
                sequence += 1
                let order = Order(
                    id: OrderID(sequence: sequence, slot: key.slot), key: key, user: "u\(sequence)", qty: 1, amountFen: 100,
                    discountFen: 0, createdAtMs: 1_795_000_000_000, expiresAtMs: 1_795_000_900_000, status: .pending, transaction: nil)
                last = journal.record(.order(order))
            }
            try await journal.waitDurable(last)
        }
        await journal.close()
        let seen = durations.withLock { $0 }.filter { $0.records >= batchSize / 2 }
        let millis = seen.map { Double($0.duration.components.attoseconds) / 1e15 + Double($0.duration.components.seconds) * 1000 }.sorted()
        let records = seen.reduce(0) { $0 + $1.records }
        return (millis.isEmpty ? 0 : millis[millis.count / 2], millis.reduce(0, +) * 1000 / Double(max(1, records)))
    }

    static func run(quick: Bool) async throws {
        let batches = quick ? 50 : 200, batchSize = CommandLine.arguments.contains("--small") ? 10 : 100
        print("change feed: \(batches) commits of \(batchSize) new orders each, synchronous=full, rounds alternating off/on")
        var off: [Double] = [], on: [Double] = [], offRecord: [Double] = [], onRecord: [Double] = []
        for round in 1...5 {
            let without = try await commits(feed: false, batches: batches, batchSize: batchSize)
            let with = try await commits(feed: true, batches: batches, batchSize: batchSize)
            off.append(without.medianMs)
            on.append(with.medianMs)
            offRecord.append(without.perRecordUs)
            onRecord.append(with.perRecordUs)
            print(String(
                format: "round %d: commit p50 without feed %.3f ms, with feed %.3f ms (%.2fx); writer per record %.1f / %.1f µs",
                round, without.medianMs, with.medianMs, with.medianMs / max(without.medianMs, 0.001), without.perRecordUs, with.perRecordUs))
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let ratio = median(on) / median(off)
        print(String(
            format: "median: commit p50 %.3f ms without, %.3f ms with: with/without = %.2f (target <= 1.10: %@); per record %.1f / %.1f µs",
            median(off), median(on), ratio, ratio <= 1.10 ? "met" : "MISSED", median(offRecord), median(onRecord)))
    }
}
