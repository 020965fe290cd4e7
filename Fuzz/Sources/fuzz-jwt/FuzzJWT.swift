import FlashSale

let verifier = BuyerTokenVerifier(secret: "fuzz-secret", cacheEntries: 16)
/// The buyer-token verifier: any token text, bare or in an `Authorization` value; no crash.
/// (The seed corpus holds minted tokens, so the mutations start next to valid ones.)
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWT(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = verifier.verify(text, nowSeconds: 1_795_000_000)
    _ = verifier.verify(authorization: "Bearer " + text, nowSeconds: 1_795_000_000)
    _ = verifier.verify(authorization: text, nowSeconds: 1_795_000_000)
    return 0
}

/// SwiftPM links an executable with `main` bound to `<module>_main`; hand over to libFuzzer's driver.
@_cdecl("fuzz_jwt_main")
public func fuzzjwtMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        var empty: UInt8 = 0
        return withUnsafePointer(to: &empty) { fuzzJWT(data ?? $0, size) }
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
