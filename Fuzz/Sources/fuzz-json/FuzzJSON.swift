import FlashSale

/// The JSON parser and every request-body decoder: any bytes, no crash, no hang.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? JSONParser.parse(bytes)
    _ = OrderBody.parse(bytes)
    _ = GroupBody.parse(bytes)
    _ = PaymentNotification.parse(bytes)
    return 0
}

/// SwiftPM links an executable with `main` bound to `<module>_main`; hand over to libFuzzer's driver.
@_cdecl("fuzz_json_main")
public func fuzzjsonMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        var empty: UInt8 = 0
        return withUnsafePointer(to: &empty) { fuzzJSON(data ?? $0, size) }
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
