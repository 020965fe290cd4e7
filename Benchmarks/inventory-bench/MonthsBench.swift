// Months of sales in minutes: the engine on an injected clock runs a Wednesday and Friday 8pm
// seckill, a Friday 8pm group-buy and a weekly coupon batch (orders, payments, expiries,
// schedules rolling forward, retirement, and the daemon's checkpoints and change-feed pruning),
// with the real journal. After every week it prints what memory holds (orders in the shards,
// the allocator's live bytes, RSS after a purge) and, every few weeks, how long a restart takes
// (reading the journal and rebuilding the shards; the median of five).
// `inventory-bench --months [weeks] [orders]`; `--keep` sets `memory.retention` to 366 days (the most allowed),
// to compare with what retirement saves.

import Dispatch
import FlashSale
import FlashSaleJournal
import Foundation
import InventoryActor
import Logging
import NIOCore
import NIOPosix

enum MonthsBench {
    static let payment = "bench-payment-secret-0123"

    static func config(directory: String, nowMs: Int64, retention: String) throws -> SaleConfig {
        try SaleConfig.parse(
            yaml: """
                secrets: { user_token: bench-user-secret-0123, payment: \(payment), ops: bench-ops-secret-0123 }
                timezone: Asia/Shanghai
                data: \(directory)
                journal: { synchronous: normal }
                payment: { window: 15m }
                memory: { retention: \(retention) }
                events:
                  - id: wk
                    kind: seckill
                    schedule: { days: [wed, fri], at: "20:00", duration: 2h, horizon: 14d }
                    items:
                      - { sku: S1, name: Rice cooker, price: 100, stock: 1000000, limit_per_user: 5 }
                      - { sku: S2, name: Kettle, price: 50, stock: 1000000, limit_per_user: 5 }
                  - id: gb
                    kind: groupbuy
                    schedule: { days: [fri], at: "20:00", duration: 2h, horizon: 14d }
                    items:
                      - { sku: G1, name: Tea set, price: 100, group_size: 3, group_price: 60, stock: 1000000, limit_per_user: 5 }
                """, sourceName: "months-bench.yaml", environment: [:], nowMs: nowMs)
    }

    static func run() async throws {
        let arguments = CommandLine.arguments.drop { $0 != "--months" }.dropFirst().prefix { !$0.hasPrefix("--") }.compactMap { Int($0) }
        let weeks = arguments.first ?? 26, ordersPerSale = arguments.dropFirst().first ?? 20_000
        let keep = CommandLine.arguments.contains("--keep")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("months-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Monday 2027-01-04 00:00 Asia/Shanghai.
        let startMs: Int64 = 1_799_078_400_000
        let clock = ManualClock(startMs: startMs)
        let config = try config(directory: directory, nowMs: startMs, retention: keep ? "366d" : "7d")
        let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let journal = try Journal(directory: directory, synchronous: .normal, batchMax: 4_096, logger: logger, feed: ChangeFeedJSON(clock: clock))
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        let engine = SaleEngine(config: config, clock: clock, journal: journal, logger: logger, loops: loops)
        await engine.recover(from: try Journal.recover(directory: directory))
        print("months: \(weeks) weeks of Wed/Fri 20:00 sales, \(ordersPerSale) orders each (60% paid), a coupon batch a week (a quarter of buyers redeem one), a Friday group-buy of \(ordersPerSale / 4) orders (groups of 3, 60% formed), memory.retention \(keep ? "366 days (the most allowed)" : "7 days")")
        print("week  orders-stored  orders-held  allocated-MiB  rss-MiB  database-MiB  restart ms (read+rebuild), CPU ms")
        let signer = PaymentSignature(secret: payment)
        var stored = 0
        let hourMs: Int64 = 3_600_000
        for week in 1...weeks {
            // Each Monday the back office opens the week's coupon batch (admin API): one coupon
            // a buyer, good for a day after the claim; a quarter of the buyers use one.
            let batchBody = Array(#"{"id":"w\#(week)","total":\#(ordersPerSale),"value":10,"min_spend":0,"per_user":1,"per_ip":1000000,"starts_at":"now","ends_at":"now+7d","valid_for":"24h"}"#.utf8)
            guard case .success(let batch) = engine.checkNewCouponBatch(json: batchBody),
                case .success = await engine.createCouponBatch(batch, body: batchBody, answer: nil)
            else { fatalError("the week's coupon batch was refused") }
            for _ in 0..<(7 * 24) {
                clock.advance(ms: hourMs)
                await engine.rollSchedules()
                await engine.expireDue()
                await engine.retireEnded()
                // What the daemon's own timers do (every 30 s and 10 s there; hourly here).
                _ = await engine.checkpoint()
                engine.pruneChanges()
                let nowMs = clock.nowMs()
                for event in engine.catalog.events where event.config.startsAtMs <= nowMs && nowMs < event.config.startsAtMs + hourMs {
                    if event.config.kind == .groupbuy {
                        stored += await groupSale(engine, event: event.config.id, orders: ordersPerSale / 4, signer: signer, clock: clock)
                        continue
                    }
                    stored += try await sale(engine, event: event.config.id, batch: "w\(week)", orders: ordersPerSale, signer: signer, clock: clock)
                }
            }
            var held = 0
            for shard in engine.inventory.shards { held += await shard.orderCount() }
            let memory = Allocator.purgedFigures()
            var restart = ""
            if week % 4 == 0 || week == weeks {
                _ = await engine.settled()
                // The median of five: the box is shared.
                var times: [(read: Double, rebuild: Double, cpu: Double)] = []
                for _ in 0..<5 { times.append(try await restartMs(directory: directory, config: config, clock: clock, logger: logger, loops: loops)) }
                let median = times.sorted { $0.read + $0.rebuild < $1.read + $1.rebuild }[2]
                let cpu = times.map(\.cpu).sorted()[2]
                restart = String(format: "%.0f (%.0f+%.0f), CPU %.0f", median.read + median.rebuild, median.read, median.rebuild, cpu)
            }
            let database = databaseMiB(directory)
            print(String(format: "%4d  %13d  %11d  %13.1f  %7.1f  %12.1f  %@", week, stored, held, memory.allocatedMiB, memory.rssMiB, database, restart))
            fflush(nil)
        }
        await journal.close()
    }

    /// One sale: `orders` orders from distinct buyers, 60 % of them paid; the rest expire. A
    /// quarter of the buyers claim a coupon of `batch` (at the first sale of the week) and redeem it.
    static func sale(_ engine: SaleEngine, event: String, batch: String, orders: Int, signer: PaymentSignature, clock: ManualClock) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            let lanes = 32
            for lane in 0..<lanes {
                group.addTask {
                    var placed = 0
                    for index in stride(from: lane, to: orders, by: lanes) {
                        let user = "u\(index)"
                        var coupon: String?
                        if index % 4 == 0, case .success(let claimed) = await engine.claimCoupon(batch: batch, user: user, clientIP: "10.0.0.1") {
                            coupon = claimed.code.description
                        }
                        let request = PlaceOrderRequest(user: user, event: event, sku: index % 2 == 0 ? "S1" : "S2", qty: 1, coupon: coupon)
                        guard case .success(let order) = await engine.placeOrder(request) else { continue }
                        placed += 1
                        guard index % 5 < 3 else { continue }
                        await pay(engine, order: order, signer: signer, clock: clock)
                    }
                    return placed
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// The database and its WAL, MiB.
    static func databaseMiB(_ directory: String) -> Double {
        let files = [Journal.databaseFileName, Journal.databaseFileName + "-wal"]
        let bytes = files.compactMap { try? FileManager.default.attributesOfItem(atPath: directory + "/" + $0)[.size] as? Int }.reduce(0, +)
        return Double(bytes) / 1_048_576
    }

    /// One group-buy sale: groups of three (one opens, two join), every member of 60 % of
    /// them paying (formed); the rest fail at their deadline. About `orders` orders.
    static func groupSale(_ engine: SaleEngine, event: String, orders: Int, signer: PaymentSignature, clock: ManualClock) async -> Int {
        await withTaskGroup(of: Int.self) { group in
            let lanes = 32
            for lane in 0..<lanes {
                group.addTask {
                    var placed = 0
                    for index in stride(from: lane, to: orders / 3, by: lanes) {
                        guard case .success(let opened) = await engine.openGroup(user: "g\(index)a", event: event, sku: "G1") else { continue }
                        var members = [opened.order]
                        for user in ["g\(index)b", "g\(index)c"] {
                            if case .success(let joined) = await engine.joinGroup(opened.view.group.id.description, user: user) { members.append(joined.order) }
                        }
                        placed += members.count
                        guard index % 5 < 3 else { continue }
                        for order in members { await pay(engine, order: order, signer: signer, clock: clock) }
                    }
                    return placed
                }
            }
            return await group.reduce(0, +)
        }
    }

    /// A signed payment notification for `order`, as the provider sends it.
    static func pay(_ engine: SaleEngine, order: Order, signer: PaymentSignature, clock: ManualClock) async {
        let body = Array(#"{"order":"\#(order.id)","transaction":"t\#(order.id)","amount":\#(order.amountFen)}"#.utf8)
        let timestamp = String(clock.nowMs() / 1000), nonce = "n\(order.id)"
        _ = await engine.notifyPayment(
            timestamp: timestamp, nonce: nonce, signature: signer.sign(timestamp: timestamp, nonce: nonce, body: body), body: body)
    }

    /// A restart, ms: the journal read back, and a fresh engine rebuilt from it (wall clock),
    /// and the CPU time the process spent on both (every thread: steadier on a shared box).
    static func restartMs(directory: String, config: SaleConfig, clock: ManualClock, logger: Logger, loops: [any EventLoop]) async throws -> (read: Double, rebuild: Double, cpu: Double) {
        let cpuBefore = processCPUms()
        let started = DispatchTime.now()
        let state = try Journal.recover(directory: directory)
        let read = DispatchTime.now()
        let engine = SaleEngine(config: config, clock: clock, journal: nil, logger: logger, loops: loops)
        await engine.recover(from: state)
        let done = DispatchTime.now()
        return (
            Double(read.uptimeNanoseconds - started.uptimeNanoseconds) / 1e6, Double(done.uptimeNanoseconds - read.uptimeNanoseconds) / 1e6,
            processCPUms() - cpuBefore)
    }

    /// User and system CPU time of this process so far, ms.
    static func processCPUms() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000
    }
}

/// The allocator's figures: jemalloc's live bytes and the RSS after returning its free pages
/// to the kernel (so RSS shows what is held, not what the allocator keeps cached). Built with
/// glibc's malloc (`FLASHSALE_GLIBC_MALLOC=1`), only the RSS.
enum Allocator {
    typealias Mallctl = @convention(c) (
        UnsafePointer<CChar>?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?, UnsafeMutableRawPointer?, Int
    ) -> Int32

    static let mallctl: Mallctl? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallctl").map { unsafeBitCast($0, to: Mallctl.self) }

    static func purgedFigures() -> (allocatedMiB: Double, rssMiB: Double) {
        var allocated = 0.0
        if let mallctl {
            // MALLCTL_ARENAS_ALL is 4096; a new epoch refreshes the statistics.
            _ = mallctl("arena.4096.purge", nil, nil, nil, 0)
            var epoch: UInt64 = 1
            _ = mallctl("epoch", nil, nil, &epoch, MemoryLayout<UInt64>.size)
            var bytes = 0, size = MemoryLayout<Int>.size
            if mallctl("stats.allocated", &bytes, &size, nil, 0) == 0 { allocated = Double(bytes) / 1_048_576 }
        }
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let rssKiB = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0
        return (allocated, rssKiB / 1024)
    }
}
