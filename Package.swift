// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "flashsale-engine",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "flashsaled", targets: ["flashsaled"]),
        .library(name: "FlashSale", targets: ["FlashSale"]),
        .library(name: "FlashSaleJournal", targets: ["FlashSaleJournal"]),
        .library(name: "FlashSaleHTTP", targets: ["FlashSaleHTTP"]),
        .library(name: "FlashSaleOps", targets: ["FlashSaleOps"]),
        .library(name: "FlashSaleWebhooks", targets: ["FlashSaleWebhooks"]),
        .library(name: "InventoryActor", targets: ["InventoryActor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // The stock core: synchronous ledgers and the actors that own them. No I/O.
        .target(name: "InventoryActor", exclude: ["README.md"]),
        // The system SQLite (libsqlite3-dev), through a module map.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // The journal: SQLite and the core's value types only; no engine, guard or HTTP type.
        .target(
            name: "FlashSaleJournal",
            dependencies: [
                "InventoryActor",
                "CSQLite",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FlashSale",
            dependencies: [
                "InventoryActor",
                "FlashSaleJournal",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The buyer HTTP API and the metrics: an adapter over the engine's public API.
        .target(
            name: "FlashSaleHTTP",
            dependencies: [
                "FlashSale",
                "FlashSaleJournal",
                "InventoryActor",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The ops line protocol (TCP): an adapter over the engine's public API.
        .target(
            name: "FlashSaleOps",
            dependencies: [
                "FlashSale",
                "FlashSaleJournal",
                "InventoryActor",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The change feed pushed to the shop's receivers (§6): an adapter over the
        // engine's feed reads, with a maintained HTTP client.
        .target(
            name: "FlashSaleWebhooks",
            dependencies: [
                "FlashSale",
                "FlashSaleJournal",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .executableTarget(
            name: "flashsaled",
            dependencies: [
                "FlashSale",
                "FlashSaleHTTP",
                "FlashSaleJournal",
                "FlashSaleOps",
                "FlashSaleWebhooks",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                "InventoryActor",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // FLASHSALE_GLIBC_MALLOC=1 builds without jemalloc (LoadTests/compare.sh measures both).
            linkerSettings: Context.environment["FLASHSALE_GLIBC_MALLOC"] == nil
                ? [.linkedLibrary("jemalloc", .when(platforms: [.linux]))] : []
        ),
        .executableTarget(
            name: "inventory-bench",
            dependencies: [
                "InventoryActor", "FlashSale", "FlashSaleJournal",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/inventory-bench",
            // The daemon's allocator, so memory figures (`--months`) are the daemon's.
            linkerSettings: Context.environment["FLASHSALE_GLIBC_MALLOC"] == nil
                ? [.linkedLibrary("jemalloc", .when(platforms: [.linux]))] : []
        ),
        // The 8pm-burst load generator: open-loop arrivals, payments, audit, report (LoadTests/README.md).
        .executableTarget(
            name: "loadtest",
            dependencies: [
                "FlashSale",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "LoadTests/loadtest"
        ),
        // Tests follow the targets: each test target depends only on the layer it proves (and
        // the layers under it), so the compiler checks that a journal test needs no engine.
        // What they share is in FlashSaleTestKit, which depends on nothing of ours.
        .target(
            name: "FlashSaleTestKit", dependencies: [.product(name: "Logging", package: "swift-log")], path: "Tests/FlashSaleTestKit"),
        // The core's own tests: nothing but the core.
        .testTarget(name: "InventoryActorTests", dependencies: ["InventoryActor"]),
        // The journal's: SQLite files, tickets, recovery; no engine.
        .testTarget(
            name: "FlashSaleJournalTests",
            dependencies: ["FlashSaleJournal", "InventoryActor", "FlashSaleTestKit", .product(name: "Logging", package: "swift-log")]
        ),
        // The HTTP adapter's own machinery (the connection handler's bounds), without an engine.
        .testTarget(
            name: "FlashSaleHTTPTests",
            dependencies: [
                "FlashSaleHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The ops protocol's pure parts: line decoder, command table, replies, WATCH coalescing.
        .testTarget(
            name: "FlashSaleOpsTests",
            dependencies: [
                "FlashSaleOps", "FlashSale", "InventoryActor",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        // The engine through its front doors (the buyer API, ops, a real socket): the
        // contract's sections, end to end.
        .testTarget(
            name: "FlashSaleTests",
            dependencies: [
                "FlashSale",
                "FlashSaleHTTP",
                "FlashSaleJournal",
                "FlashSaleOps",
                "InventoryActor",
                "FlashSaleTestKit",
                "FlashSaleWebhooks",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Micro-benchmarks (ordo-one/benchmark, docs/PERFORMANCE.md), as Hummingbird gates its own:
// only with FLASHSALE_BENCHMARKS set does the package depend on `benchmark`, so the default
// `swift build` / `swift test` (and CI's cold build) never resolve or build it.
//
//   FLASHSALE_BENCHMARKS=1 swift package --disable-sandbox benchmark --target FlashSaleBenchmarks
//
// `--target` is needed: the plugin takes every executable under Benchmarks/ for a benchmark
// suite, and Benchmarks/inventory-bench is a plain executable of its own.
if Context.environment["FLASHSALE_BENCHMARKS"] != nil {
    // The default traits also pull swift-runtime-interposer, which the package mirror lacks.
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"])
    )
    package.targets.append(
        .executableTarget(
            name: "FlashSaleBenchmarks",
            dependencies: [
                "FlashSale",
                "FlashSaleJournal",
                "InventoryActor",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/FlashSaleBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
}
