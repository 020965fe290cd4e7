import FlashSale
import NIOCore

/// The ops line decoder: any byte stream, split at a fuzzer-chosen point (two reads), gives
/// lines no longer than the limit and never crashes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpsLine(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limit = 64
    var decoder = OpsLineDecoder(lineBytesMax: limit)
    let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    var buffer = ByteBuffer(bytes: bytes[..<split])
    for part in [bytes[split...], []] {
        buffer.writeBytes(part)
        while let frame = decoder.next(&buffer) {
            if case .line(let line) = frame { precondition(line.utf8.count <= limit, "line over the limit") }
        }
    }
    return 0
}

/// SwiftPM links an executable with `main` bound to `<module>_main`; hand over to libFuzzer's driver.
@_cdecl("fuzz_ops_line_main")
public func fuzzopslineMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        var empty: UInt8 = 0
        return withUnsafePointer(to: &empty) { fuzzOpsLine(data ?? $0, size) }
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
