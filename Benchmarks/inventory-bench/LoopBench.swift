// Claims decided the way HTTP requests claim them: the callers are the event loops the shards
// run on. A claim whose shard runs on the caller's loop is decided there synchronously
// (`assumeIsolated`); one whose shard runs on the other loop costs one hop there and one back.
// No task anywhere.
import FlashSale
import FlashSaleJournal
import Foundation
import InventoryActor
import Logging
import NIOCore
import NIOPosix

enum LoopBench {
    /// Issues `perLoop` claims from each loop of `loops` through `claim`, in batches of
    /// `batch` per loop tick (so hops from the other loop are served in between); the seconds
    /// until every claim has been answered.
    static func drive(
        loops: [any EventLoop], perLoop: Int, batch: Int = 256,
        claim: @escaping @Sendable (_ loop: Int, _ n: Int, _ done: @escaping () -> Void) -> Void
    ) async throws -> Double {
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, loop) in loops.enumerated() {
                group.addTask {
                    let finished = loop.makePromise(of: Void.self)
                    loop.execute {
                        let driver = Driver(loop: loop, index: index, perLoop: perLoop, batch: batch, claim: claim, finished: finished)
                        driver.tick()
                    }
                    try await finished.futureResult.get()
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// One loop's caller: issues a batch per tick, counts answers, finishes once all are in.
    final class Driver {
        let loop: any EventLoop
        let index: Int
        let perLoop: Int
        let batch: Int
        let claim: @Sendable (Int, Int, @escaping () -> Void) -> Void
        let finished: EventLoopPromise<Void>
        var issued = 0
        var answered = 0

        init(
            loop: any EventLoop, index: Int, perLoop: Int, batch: Int, claim: @escaping @Sendable (Int, Int, @escaping () -> Void) -> Void,
            finished: EventLoopPromise<Void>
        ) {
            (self.loop, self.index, self.perLoop, self.batch, self.claim, self.finished) = (loop, index, perLoop, batch, claim, finished)
        }

        func tick() {
            let end = min(perLoop, issued + batch)
            while issued < end {
                let n = issued
                issued += 1
                claim(index, n) { self.answeredOne() }
            }
            if issued < perLoop {
                let bound = NIOLoopBound(self, eventLoop: loop)
                loop.execute { bound.value.tick() }
            }
        }

        func answeredOne() {
            answered += 1
            if answered == perLoop { finished.succeed(()) }
        }
    }

    /// Reservations/s over `skus` SKUs on `shards` shards spread over two loops.
    static func reservations(skus: Int, shards: Int, perLoop: Int) async throws -> Double {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let inventory = Inventory(shardCount: shards, sink: DiscardingChangeSink(), executors: loops.map(\.executor))
        let keys = (0..<skus).map { LedgerKey(event: "bench", sku: "S\($0)") }
        await inventory.addLedgers(keys.map { ($0, Int64(2 * perLoop), Int32.max) })
        let users = (0..<2).map { loop in (0..<1_000).map { "u\(loop)-\($0)" } }
        // As the engine hops: claims and answers cross between the loops in mailboxes.
        typealias Reply = NIOLoopBound<() -> Void>
        let answers = loops.map { loop in LoopMailbox<Reply>(target: loop) { batch in for reply in batch { reply.value() } } }
        let claims = loops.indices.map { origin in
            loops.map { owner in
                LoopMailbox<(InventoryShard, ReserveRequest, Reply)>(target: owner) { batch in
                    for (shard, request, reply) in batch {
                        _ = shard.assumeIsolated { $0.reserve(request) }
                        answers[origin].post(reply)
                    }
                }
            }
        }
        let seconds = try await drive(loops: loops, perLoop: perLoop) { loop, n, done in
            let key = keys[(n &* 7919 &+ loop) % keys.count]
            let request = ReserveRequest(key: key, user: users[loop][n % 1_000], qty: 1, amountFen: 100, discountFen: 0, nowMs: 0, expiresAtMs: 60_000)
            let shard = inventory.shard(for: key)
            let owner = shard.index % loops.count
            if owner == loop {
                _ = shard.assumeIsolated { $0.reserve(request) }
                done()
            } else {
                claims[loop][owner].post((shard, request, NIOLoopBound(done, eventLoop: loops[loop])))
            }
        }
        await inventory.verifyInvariants()
        try await group.shutdownGracefully()
        return Double(2 * perLoop) / seconds
    }

    /// Durable seckill orders/s through the engine's loop path (checks, shard, journal unit,
    /// the loop's answer queue), one SKU, callers on both loops; journal on (synchronous=full)
    /// or off.
    static func engineOrders(journal: Bool, perLoop: Int) async throws -> Double {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var config = try SaleConfig.load(path: nil, environment: [:], nowMs: SystemClock().nowMs())
        config.dataDirectory = directory
        config.shards = 16
        let item = ItemConfig(sku: "D1", name: "bench", priceFen: 100, stock: Int64(2 * perLoop), limitPerUser: 1, groupSize: nil, groupPriceFen: nil)
        let now = SystemClock().nowMs()
        config.events = [EventConfig(id: "bench", kind: .seckill, startsAtMs: now - 1000, endsAtMs: now + 3_600_000, items: [item])]
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let journalInstance = journal ? try Journal(directory: directory, synchronous: .full, batchMax: 4096, logger: logger) : nil
        let engine = SaleEngine(config: config, clock: SystemClock(), journal: journalInstance, logger: logger, loops: loops)
        await engine.recover(from: RecoveredState())
        let users = (0..<2).map { loop in (0..<perLoop).map { "u\(loop)-\($0)" } }
        let seconds = try await drive(loops: loops, perLoop: perLoop) { loop, n, done in
            let request = PlaceOrderRequest(user: users[loop][n], event: "bench", sku: "D1", qty: 1)
            let taken = engine.placeOrder(request, on: loops[loop]) { result in
                if case .failure(let rejection) = result { fatalError("refused: \(rejection)") }
                done()
            }
            precondition(taken)
        }
        await journalInstance?.close()
        try await group.shutdownGracefully()
        return Double(2 * perLoop) / seconds
    }

    static func run(quick: Bool) async throws {
        let perLoop = quick ? 200_000 : 1_000_000
        print("on the event loops (2 loops, callers on both, no tasks), \(perLoop) claims per loop:")
        for round in 1...3 {
            let one = try await reservations(skus: 1, shards: 64, perLoop: perLoop)
            let many = try await reservations(skus: 10_000, shards: 64, perLoop: perLoop)
            print("round \(round): reservations, 1 hot SKU: \(InventoryBench.format(one))   10 000 SKUs / 64 shards: \(InventoryBench.format(many))")
        }
        let orders = quick ? 50_000 : 200_000
        for round in 1...3 {
            let off = try await engineOrders(journal: false, perLoop: orders)
            let on = try await engineOrders(journal: true, perLoop: orders)
            print("round \(round): engine orders on the loops, journal off: \(InventoryBench.format(off))   journal on (synchronous=full): \(InventoryBench.format(on))   on/off = \(String(format: "%.2f", on / off))")
        }
    }
}
