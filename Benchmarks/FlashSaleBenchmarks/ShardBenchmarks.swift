// The sharded actors: claims through `Inventory`, which routes each to the one
// `InventoryShard` actor owning its SKU. The HTTP server runs every request in a task of its
// own, so the concurrent shape here is one task per claim; the sequential one shows the bare
// actor hop. A fresh `Inventory` (the daemon's default shard count) per iteration, built before the
// measurement starts; its changes go to a `DiscardingChangeSink` (no journal).
import Benchmark
import FlashSale
import InventoryActor

func shardBenchmarks() {
    let claims = 1_000
    let shardCount = SaleConfig.defaultShards
    let configuration = Benchmark.Configuration(metrics: MetricSets.system)
    let oneSKU = [LedgerKey(event: "bench", sku: "S0")]
    let manySKUs = (0..<10_000).map { LedgerKey(event: "bench", sku: "S\($0)") }

    /// `claims` requests from distinct users, spread over `keys` as inventory-bench spreads them.
    func requests(over keys: [LedgerKey]) -> [ReserveRequest] {
        (0..<claims).map { index in
            ReserveRequest(
                key: keys[(index &* 7919) % keys.count], user: "u\(index)", qty: 1, amountFen: 1_980, discountFen: 0,
                nowMs: 0, expiresAtMs: 900_000)
        }
    }

    /// An inventory whose `keys` each hold enough stock for every claim.
    func inventory(keys: [LedgerKey]) async -> Inventory {
        let inventory = Inventory(shardCount: shardCount, sink: DiscardingChangeSink())
        await inventory.addLedgers(keys.map { ($0, Int64(claims), Int32.max) })
        return inventory
    }

    let oneSKURequests = requests(over: oneSKU)
    let manySKURequests = requests(over: manySKUs)

    Benchmark("Shards: reserve, 1 SKU, 1 task awaiting in turn", configuration: configuration) { benchmark in
        let inventory = await inventory(keys: oneSKU)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(await inventory.reserve(oneSKURequests[index % claims]))
        }
    }

    for (name, keys, requests) in [("1 SKU", oneSKU, oneSKURequests), ("10 000 SKUs", manySKUs, manySKURequests)] {
        Benchmark("Shards: reserve, \(name), 1 000 concurrent tasks", configuration: configuration) { benchmark in
            let inventory = await inventory(keys: keys)
            benchmark.startMeasurement()
            await withDiscardingTaskGroup { group in
                for index in benchmark.scaledIterations {
                    let request = requests[index % claims]
                    group.addTask { blackHole(await inventory.reserve(request)) }
                }
            }
            benchmark.stopMeasurement()
            let orders = await orderCount(inventory)
            precondition(orders == claims, "not every claim made an order")
        }
    }

    // A claim then its payment, each its own hop, as a buyer's two requests are.
    Benchmark("Shards: reserve + pay, 10 000 SKUs, 1 000 concurrent tasks", configuration: configuration) { benchmark in
        let inventory = await inventory(keys: manySKUs)
        benchmark.startMeasurement()
        await withDiscardingTaskGroup { group in
            for index in benchmark.scaledIterations {
                let request = manySKURequests[index % claims]
                group.addTask {
                    guard case .reserved(let order) = await inventory.reserve(request).result else {
                        preconditionFailure("a shard refused a claim")
                    }
                    let paid = await inventory.pay(order.id, transaction: "t1", amountFen: order.amountFen, nowMs: 1)
                    guard case .paid = paid.result else { preconditionFailure("a shard refused a payment") }
                }
            }
        }
        benchmark.stopMeasurement()
        let orders = await orderCount(inventory)
        precondition(orders == claims, "not every claim made an order")
    }
}

/// Orders held over all shards.
private func orderCount(_ inventory: Inventory) async -> Int {
    var count = 0
    for shard in inventory.shards { count += await shard.orderCount() }
    return count
}
