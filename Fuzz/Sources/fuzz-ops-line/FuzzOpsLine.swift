import FlashSale
import FlashSaleOps
import FuzzSupport
import NIOCore

/// The ops line decoder: any byte stream, split at a fuzzer-chosen point (two reads), gives
/// lines no longer than the limit and never crashes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpsLine(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(fuzzInput(data, size))
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

@_cdecl("fuzz_ops_line_main")
public func fuzzopslineMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runLibFuzzer(argc, argv, fuzzOpsLine)
}
