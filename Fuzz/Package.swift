// swift-tools-version:6.1
// libFuzzer targets for FlashSale's parsers (issue 7). Kept out of the main package's build
// graph: build and run them with `Fuzz/run.sh [seconds]`, which compiles every module with
// `-sanitize=fuzzer` (coverage for the library code too) in Fuzz/.build.
import PackageDescription

let targets = ["fuzz-json", "fuzz-ops-line", "fuzz-ops-command", "fuzz-ops-session", "fuzz-jwt", "fuzz-payment", "fuzz-config"]

let package = Package(
    name: "flashsale-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "flashsale-engine", path: ".."),
        // The same versions the engine resolves (for the ops target's test channel).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "FlashSale", package: "flashsale-engine"),
                .product(name: "FlashSaleJournal", package: "flashsale-engine"),
                .product(name: "FlashSaleOps", package: "flashsale-engine"),
                .product(name: "Logging", package: "swift-log"),
            ]
        )
    ] + targets.map { name in
        .executableTarget(
            name: name,
            dependencies: [
                "FuzzSupport",
                .product(name: "FlashSale", package: "flashsale-engine"),
                .product(name: "FlashSaleOps", package: "flashsale-engine"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/\(name)",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    },
    swiftLanguageModes: [.v6]
)
