// Release-mode throughput figures for the stock core and the durable order path.
//
//   swift run -c release inventory-bench [--quick]
//
// Prints reservations/s for 1 000 concurrent tasks on ONE SKU and spread over 10 000 SKUs,
// coupon claims/s on one batch, seckill reservations/s alone and during a group-join burst
// (ClaimsBench.swift; `--claims` stops there), and durable orders/s through the engine with
// the journal on and off, with their ratio.
// Figures only: nothing here asserts a speed.
import FlashSale
import FlashSaleJournal
import Foundation
import InventoryActor
import Logging

@main
struct InventoryBench {
    static func main() async throws {
        let quick = CommandLine.arguments.contains("--quick")
        // Keep the hot loops off the main actor.
        try await Task.detached {
            try await run(quick: quick)
        }.value
    }

    static func seconds(_ body: () async throws -> Void) async rethrows -> Double {
        let start = ContinuousClock.now
        try await body()
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    static func format(_ rate: Double) -> String {
        rate >= 1e6 ? String(format: "%.2f M/s", rate / 1e6) : String(format: "%.0f k/s", rate / 1e3)
    }

    static func reservations(shards: Int, skus: Int, tasks: Int, perTask: Int) async -> Double {
        let inventory = Inventory(shardCount: shards, sink: DiscardingChangeSink())
        let keys = (0..<skus).map { LedgerKey(event: "bench", sku: "S\($0)") }
        await inventory.addLedgers(keys.map { ($0, Int64(tasks * perTask), Int32.max) })
        let elapsed = await seconds {
            await withDiscardingTaskGroup { group in
                for task in 0..<tasks {
                    group.addTask {
                        let user = "u\(task)"
                        for n in 0..<perTask {
                            let key = keys[(task &* 7919 &+ n) % keys.count]
                            let request = ReserveRequest(key: key, user: user, qty: 1, amountFen: 100, discountFen: 0, nowMs: 0, expiresAtMs: 60_000)
                            _ = await inventory.reserve(request)
                        }
                    }
                }
            }
        }
        await inventory.verifyInvariants()
        return Double(tasks * perTask) / elapsed
    }

    /// The floor: 1 000 tasks calling one actor method that only counts.
    actor Counter {
        var value = 0
        func increment(_ request: ReserveRequest) -> Int {
            value += Int(request.qty)
            return value
        }
        func add(_ n: Int) -> Int {
            value += n
            return value
        }
        func bump() -> Int {
            value += 1
            return value
        }
    }

    static func emptyCalls(tasks: Int, perTask: Int) async -> Double {
        let counter = Counter()
        let key = LedgerKey(event: "bench", sku: "S0")
        let elapsed = await seconds {
            await withDiscardingTaskGroup { group in
                for task in 0..<tasks {
                    group.addTask {
                        let user = "u\(task)"
                        for _ in 0..<perTask {
                            _ = await counter.increment(ReserveRequest(key: key, user: user, qty: 1, amountFen: 100, discountFen: 0, nowMs: 0, expiresAtMs: 60_000))
                        }
                    }
                }
            }
        }
        return Double(tasks * perTask) / elapsed
    }

    /// The synchronous core alone: one `OrderBook`, no actor, no tasks.
    static func bookOnly(count: Int) async -> Double {
        var book = OrderBook()
        let key = LedgerKey(event: "bench", sku: "S0")
        book.addLedger(key, total: Int64(count), limitPerUser: .max)
        let users = (0..<1000).map { "u\($0)" }
        let elapsed = await seconds {
            for n in 0..<count {
                let request = ReserveRequest(key: key, user: users[n % 1000], qty: 1, amountFen: 100, discountFen: 0, nowMs: 0, expiresAtMs: 60_000)
                _ = book.reserve(request)
            }
        }
        book.verifyInvariants()
        return Double(count) / elapsed
    }

    static func durableOrders(journal: Bool, tasks: Int, perTask: Int) async throws -> Double {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var config = try SaleConfig.load(path: nil, environment: [:], nowMs: SystemClock().nowMs())
        config.dataDirectory = directory
        config.shards = 16
        let item = ItemConfig(sku: "D1", name: "bench", priceFen: 100, stock: Int64(tasks * perTask), limitPerUser: 1, groupSize: nil, groupPriceFen: nil)
        let now = SystemClock().nowMs()
        config.events = [EventConfig(id: "bench", kind: .seckill, startsAtMs: now - 1000, endsAtMs: now + 3_600_000, items: [item])]
        let logger = Logger(label: "bench")
        let journalInstance = journal ? try Journal(directory: directory, synchronous: .full, batchMax: 4096, logger: logger) : nil
        let engine = SaleEngine(config: config, clock: SystemClock(), journal: journalInstance, logger: logger)
        await engine.recover(from: RecoveredState())
        let elapsed = try await seconds {
            try await withThrowingDiscardingTaskGroup { group in
                for task in 0..<tasks {
                    group.addTask {
                        for n in 0..<perTask {
                            let result = await engine.placeOrder(PlaceOrderRequest(user: "u\(task)-\(n)", event: "bench", sku: "D1", qty: 1))
                            if case .failure(let rejection) = result { throw BenchError.rejected(rejection) }
                        }
                    }
                }
            }
        }
        await journalInstance?.close()
        return Double(tasks * perTask) / elapsed
    }

    enum BenchError: Error { case rejected(Rejection) }

    static func run(quick: Bool) async throws {
        if let index = CommandLine.arguments.firstIndex(of: "--scale") {
            let count = CommandLine.arguments.dropFirst(index + 1).first.flatMap { Int($0) } ?? 5_000_000
            try await ScaleBench.run(pending: count)
            return
        }
        let perTask = quick ? 200 : 2_000
        if CommandLine.arguments.contains("--loops") {
            try await LoopBench.run(quick: quick)
            return
        }
        if CommandLine.arguments.contains("--months") {
            try await MonthsBench.run()
            return
        }
        if CommandLine.arguments.contains("--feed") {
            try await FeedBench.run(quick: quick)
            return
        }
        if CommandLine.arguments.contains("--book") {
            for _ in 1...3 { print("core only (one OrderBook, no actor): \(format(await bookOnly(count: 2_000_000)))") }
            return
        }
        print("inventory-bench: \(ProcessInfo.processInfo.activeProcessorCount) cores, 1000 tasks x \(perTask) each")
        print("core only (one OrderBook, no actor): \(format(await bookOnly(count: 1000 * perTask)))")
        print("floor (1000 tasks -> one actor, empty method): \(format(await emptyCalls(tasks: 1000, perTask: perTask)))")
        let bare = Counter()
        let bareSeconds = await seconds {
            await withDiscardingTaskGroup { group in
                for _ in 0..<1000 { group.addTask { for _ in 0..<perTask { _ = await bare.bump() } } }
            }
        }
        print("floor (1000 tasks -> one actor, no arguments): \(format(Double(1000 * perTask) / bareSeconds))")
        let intSeconds = await seconds {
            await withDiscardingTaskGroup { group in
                for _ in 0..<1000 { group.addTask { for n in 0..<perTask { _ = await bare.add(n) } } }
            }
        }
        print("floor (1000 tasks -> one actor, Int argument): \(format(Double(1000 * perTask) / intSeconds))")
        let prebuilt = ReserveRequest(key: LedgerKey(event: "bench", sku: "S0"), user: "u1", qty: 1, amountFen: 100, discountFen: 0, nowMs: 0, expiresAtMs: 60_000)
        let preSeconds = await seconds {
            await withDiscardingTaskGroup { group in
                for _ in 0..<1000 { group.addTask { for _ in 0..<perTask { _ = await bare.increment(prebuilt) } } }
            }
        }
        print("floor (1000 tasks -> one actor, prebuilt request): \(format(Double(1000 * perTask) / preSeconds))")
        if CommandLine.arguments.contains("--core") { return }
        await ClaimsBench.run(quick: quick)
        if CommandLine.arguments.contains("--claims") { return }
        for round in 1...3 {
            let one = await reservations(shards: 64, skus: 1, tasks: 1000, perTask: perTask)
            let many = await reservations(shards: 64, skus: 10_000, tasks: 1000, perTask: perTask)
            print("round \(round): reservations, 1 SKU: \(format(one))   10 000 SKUs / 64 shards: \(format(many))")
        }
        let orders = quick ? 20 : 100
        for round in 1...3 {
            let off = try await durableOrders(journal: false, tasks: 1000, perTask: orders)
            let on = try await durableOrders(journal: true, tasks: 1000, perTask: orders)
            print("round \(round): engine orders, journal off: \(format(off))   journal on (synchronous=full): \(format(on))   on/off = \(String(format: "%.2f", on / off))")
        }
    }
}
