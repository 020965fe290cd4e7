import FlashSale
import FuzzSupport

/// The config loader: any YAML text either loads or is a `ConfigError` naming the problem;
/// and the admin API's readers of one `events[]` or `coupons[]` entry sent as JSON, the same.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    _ = try? SaleConfig.parse(yaml: text, sourceName: "fuzz.yaml", environment: [:], nowMs: 1_795_000_000_000)
    let bytes = Array(text.utf8)
    _ = try? SaleConfig.parseAdminEvent(json: bytes, timeZoneIdentifier: "Asia/Shanghai", nowMs: 1_795_000_000_000)
    _ = try? SaleConfig.parseAdminCoupon(json: bytes, nowMs: 1_795_000_000_000)
    return 0
}

@_cdecl("fuzz_config_main")
public func fuzzconfigMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runLibFuzzer(argc, argv, fuzzConfig)
}
