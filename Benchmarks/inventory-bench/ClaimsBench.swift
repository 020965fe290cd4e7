// Coupon claims and group joins, in process (no journal): claims/s on ONE batch, and seckill
// reservations/s on other SKUs alone and then during a burst of group joins, from one run.
import Foundation
import InventoryActor

enum ClaimsBench {
    /// `tasks` tasks claiming from one batch through its shard, each with a fresh 128-bit code.
    static func couponClaims(tasks: Int, perTask: Int) async -> Double {
        let inventory = Inventory(shardCount: 64, sink: DiscardingChangeSink())
        let batch = "bench-batch"
        let shard = inventory.shard(forBatch: batch)
        let slot = CouponCode.slot(batch: batch)
        await shard.addCouponBatches([
            CouponBatchRules(
                id: batch, total: Int64(tasks * perTask), valueFen: 500, minSpendFen: 0, perUser: .max, perIP: .max,
                startsAtMs: 0, endsAtMs: .max, validForMs: 3_600_000)
        ])
        let ips = (0..<50).map { "10.0.\($0).1" }
        let elapsed = await InventoryBench.seconds {
            await withDiscardingTaskGroup { group in
                for task in 0..<tasks {
                    group.addTask {
                        var generator = SystemRandomNumberGenerator()
                        let user = "u\(task)"
                        let ip = ips[task % ips.count]
                        for _ in 0..<perTask {
                            let code = CouponCode(slot: slot, high: generator.next(), low: generator.next())
                            _ = await shard.claimCoupon(batch: batch, user: user, clientIP: ip, code: code, nowMs: 1)
                        }
                    }
                }
            }
        }
        let issued = await shard.couponsIssued(batch)
        precondition(issued == Int64(tasks * perTask), "not every claim was issued")
        return Double(tasks * perTask) / elapsed
    }

    /// The claim decision alone: one `CouponBook`, no actor; codes drawn in the loop, or
    /// before it (`predrawn`), to tell the decision's cost from the system generator's.
    static func couponBookOnly(count: Int, predrawn: Bool) async -> Double {
        var book = CouponBook()
        book.addBatch(CouponBatchRules(id: "b", total: Int64(count), valueFen: 500, minSpendFen: 0, perUser: .max, perIP: .max, startsAtMs: 0, endsAtMs: .max, validForMs: 1))
        let users = (0..<1000).map { "u\($0)" }
        var generator = SystemRandomNumberGenerator()
        let codes = predrawn ? (0..<count).map { _ in CouponCode(slot: 0, high: generator.next(), low: generator.next()) } : []
        let elapsed = await InventoryBench.seconds {
            for n in 0..<count {
                let code = predrawn ? codes[n] : CouponCode(slot: 0, high: generator.next(), low: generator.next())
                _ = book.claim(batch: "b", user: users[n % 1000], clientIP: "10.0.0.1", code: code, nowMs: 1)
            }
        }
        return Double(count) / elapsed
    }

    /// Seckill reservations/s over 1 000 SKUs by `tasks` tasks, alone and then while `tasks`
    /// more tasks join 200 groups of 50 on another SKU (most joins end `group_full`).
    static func groupBurst(tasks: Int, perTask: Int) async -> (alone: Double, during: Double, joins: Double) {
        let inventory = Inventory(shardCount: 64, sink: DiscardingChangeSink())
        let keys = (0..<1000).map { LedgerKey(event: "bench", sku: "S\($0)") }
        let groupKey = LedgerKey(event: "gbench", sku: "G")
        await inventory.addLedgers(keys.map { ($0, Int64(2 * tasks * perTask), Int32.max) } + [(groupKey, Int64(tasks * perTask), Int32.max)])
        var opened: [GroupID] = []
        for n in 0..<200 {
            let result = await inventory.shard(for: groupKey).openGroup(
                OpenGroupRequest(key: groupKey, user: "lead\(n)", size: 50, priceFen: 100, nowMs: 0, paymentDeadlineMs: 60_000, groupDeadlineMs: 3_600_000))
            if case .joined(let view, _) = result.result { opened.append(view.group.id) }
        }
        let groups = opened
        let alone = await InventoryBench.seconds { await seckill(inventory, keys: keys, tag: "a", tasks: tasks, perTask: perTask) }
        let shard = inventory.shard(for: groupKey)
        // Both bursts start together; each is timed on its own.
        let (during, joins) = await withTaskGroup(of: (isJoin: Bool, seconds: Double).self) { group in
            group.addTask {
                let elapsed = await InventoryBench.seconds {
                    await withDiscardingTaskGroup { joins in
                        for task in 0..<tasks {
                            joins.addTask {
                                for n in 0..<perTask {
                                    let id = groups[(task &+ n) % groups.count]
                                    _ = await shard.joinGroup(id, user: "j\(task)-\(n)", nowMs: 1, paymentDeadlineMs: 60_000)
                                }
                            }
                        }
                    }
                }
                return (true, elapsed)
            }
            group.addTask {
                (false, await InventoryBench.seconds { await seckill(inventory, keys: keys, tag: "d", tasks: tasks, perTask: perTask) })
            }
            var during = 0.0
            var joins = 0.0
            for await timing in group {
                if timing.isJoin { joins = timing.seconds } else { during = timing.seconds }
            }
            return (during, joins)
        }
        await inventory.verifyInvariants()
        let total = Double(tasks * perTask)
        return (total / alone, total / during, total / joins)
    }

    static func seckill(_ inventory: Inventory, keys: [LedgerKey], tag: String, tasks: Int, perTask: Int) async {
        await withDiscardingTaskGroup { group in
            for task in 0..<tasks {
                group.addTask {
                    let user = "\(tag)\(task)"
                    for n in 0..<perTask {
                        let key = keys[(task &* 7919 &+ n) % keys.count]
                        _ = await inventory.reserve(ReserveRequest(key: key, user: user, qty: 1, amountFen: 100, discountFen: 0, nowMs: 0, expiresAtMs: 60_000))
                    }
                }
            }
        }
    }

    static func run(quick: Bool) async {
        let perTask = quick ? 100 : 1_000
        print("coupon claims, core only (one CouponBook), codes drawn per claim: \(InventoryBench.format(await couponBookOnly(count: 1000 * perTask, predrawn: false)))")
        print("coupon claims, core only (one CouponBook), codes drawn before: \(InventoryBench.format(await couponBookOnly(count: 1000 * perTask, predrawn: true)))")
        for round in 1...3 {
            print("round \(round): coupon claims, 1000 tasks -> one batch: \(InventoryBench.format(await couponClaims(tasks: 1000, perTask: perTask)))")
        }
        for round in 1...3 {
            let rates = await groupBurst(tasks: 500, perTask: perTask)
            print(
                "round \(round): seckill reservations on 1 000 other SKUs alone: \(InventoryBench.format(rates.alone))   "
                    + "during a group-join burst: \(InventoryBench.format(rates.during))   joins (one group SKU): \(InventoryBench.format(rates.joins))")
        }
    }
}
