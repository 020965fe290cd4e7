// `inventory-bench --scale [N]`: memory per pending order and restart time with N orders
// (default 5 000 000): the issue's "≤ 300 bytes of RSS per pending order with 5 M pending;
// restart with 5 M orders ready in ≤ 10 s". Figures only.
import FlashSale
import FlashSaleJournal
import Foundation
import InventoryActor
import Logging

enum ScaleBench {
    /// Resident set size of this process, bytes (from /proc/self/statm).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    static func run(pending: Int) async throws {
        let skus = 100
        let keys = (0..<skus).map { LedgerKey(event: "scale", sku: "S\($0)") }
        print("scale: \(pending) pending orders from \(pending) distinct users over \(skus) SKUs")

        // 1. Memory: RSS growth per pending order, all in memory (journal off).
        let before = residentBytes()
        let inventory = Inventory(shardCount: 16, sink: DiscardingChangeSink())
        await inventory.addLedgers(keys.map { ($0, Int64(pending / skus + 1), 1) })
        let tasks = 16
        await withDiscardingTaskGroup { group in
            for task in 0..<tasks {
                group.addTask {
                    var n = task
                    while n < pending {
                        let request = ReserveRequest(
                            key: keys[n % skus], user: "u\(n)", qty: 1, amountFen: 990, discountFen: 0,
                            nowMs: 0, expiresAtMs: 900_000)
                        _ = await inventory.reserve(request)
                        n += tasks
                    }
                }
            }
        }
        let after = residentBytes()
        print(String(format: "memory: RSS +%.0f MiB for %d pending orders = %.0f bytes per pending order",
                     Double(after - before) / 1_048_576, pending, Double(after - before) / Double(pending)))

        // 2. Restart: the same orders in a journal, then recovery from it.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-scale-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let logger = Logger(label: "scale")
        let journal = try Journal(directory: directory, synchronous: .normal, batchMax: 65_536, logger: logger)
        var last: UInt64 = 0
        var sequenceBySlot = [UInt64](repeating: 0, count: OrderID.slotCount)
        let writeSeconds = await InventoryBench.seconds {
            for n in 0..<pending {
                let key = keys[n % skus]
                sequenceBySlot[key.slot] += 1
                let order = Order(
                    id: OrderID(sequence: sequenceBySlot[key.slot], slot: key.slot), key: key,
                    user: "u\(n)", qty: 1, amountFen: 990, discountFen: 0, createdAtMs: 0, expiresAtMs: 900_000,
                    status: .pending, transaction: nil)
                last = journal.record(.order(order))
            }
            try? await journal.waitDurable(last)
        }
        await journal.close()
        print(String(format: "journal: %d orders written in %.1f s", pending, writeSeconds))

        let now = SystemClock().nowMs()
        var config = try SaleConfig.load(path: nil, environment: [:], nowMs: now)
        config.dataDirectory = directory
        config.events = [EventConfig(
            id: "scale", kind: .seckill, startsAtMs: now - 1_000, endsAtMs: now + 3_600_000,
            items: (0..<skus).map { ItemConfig(sku: "S\($0)", name: "scale", priceFen: 990, stock: Int64(pending / skus + 1), limitPerUser: 1) })]
        var recovered = 0
        var readSeconds = 0.0
        let restartSeconds = try await InventoryBench.seconds {
            let reopened = try Journal(directory: directory, synchronous: .normal, batchMax: 4096, logger: logger)
            let engine = SaleEngine(config: config, clock: SystemClock(), journal: reopened, logger: logger)
            var state = RecoveredState()
            readSeconds = try await InventoryBench.seconds { state = try Journal.recover(directory: directory) }
            recovered = state.orders.count
            await engine.recover(from: state)
            await reopened.close()
        }
        print(String(format: "restart: %d orders recovered, invariants checked, ready in %.1f s (%.1f s reading the journal, %.1f s restoring the shards)",
                     recovered, restartSeconds, readSeconds, restartSeconds - readSeconds))
    }
}
