import FlashSale
import FuzzSupport

/// The JSON parser and every request-body decoder: any bytes, no crash, no hang.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(fuzzInput(data, size))
    _ = try? JSONParser.parse(bytes)
    _ = OrderBody.parse(bytes)
    _ = GroupBody.parse(bytes)
    _ = PaymentNotification.parse(bytes)
    return 0
}

@_cdecl("fuzz_json_main")
public func fuzzjsonMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runLibFuzzer(argc, argv, fuzzJSON)
}
