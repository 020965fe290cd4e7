// Micro-benchmarks for ordo-one/benchmark: the stock ledger and order book, the sharded
// actors, the journal and token verification. Built only with FLASHSALE_BENCHMARKS set
// (Package.swift); how to run them and the figures: docs/PERFORMANCE.md.
//
//   FLASHSALE_BENCHMARKS=1 swift package --disable-sandbox benchmark --target FlashSaleBenchmarks
//
// Each benchmark does `scalingFactor` operations per iteration; the tables give the metrics
// marked `*` per operation. Figures only: no thresholds, the machine is shared and swings ±40%.
import Benchmark

let benchmarks: @Sendable () -> Void = {
    // Time, rate and allocations; not `instructions` (perf events are not there on every box)
    // nor `cpuTotal`.
    Benchmark.defaultConfiguration = .init(
        metrics: MetricSets.micro,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000
    )
    ledgerBenchmarks()
    shardBenchmarks()
    journalBenchmarks()
    tokenBenchmarks()
}

/// The metric sets the benchmarks use.
enum MetricSets {
    /// Synchronous code: time per iteration, operations per second, allocations.
    static let micro: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]
    /// Actors and the journal: the same, plus the process's peak resident memory.
    static let system: [BenchmarkMetric] = micro + [.peakMemoryResident]
}
