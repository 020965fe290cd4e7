import FlashSale
import FuzzSupport

/// The config loader: any YAML text either loads or is a `ConfigError` naming the problem.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    _ = try? SaleConfig.parse(yaml: text, sourceName: "fuzz.yaml", environment: [:], nowMs: 1_795_000_000_000)
    return 0
}

@_cdecl("fuzz_config_main")
public func fuzzconfigMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runLibFuzzer(argc, argv, fuzzConfig)
}
