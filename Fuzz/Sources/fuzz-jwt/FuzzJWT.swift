import FlashSale
import FuzzSupport

let verifier = BuyerTokenVerifier(secret: "fuzz-secret", cacheEntries: 16)
/// Keys with ids, as `secrets.user_tokens` gives them: the header's `kid` picks the key.
let keyring = BuyerTokenVerifier(
    keys: [TokenKey(kid: "k1", secret: "fuzz-secret"), TokenKey(kid: "k2", secret: "fuzz-secret-2")], cacheEntries: 16)
/// The buyer-token verifier: any token text, bare or in an `Authorization` value; no crash.
/// (The seed corpus holds minted tokens, so the mutations start next to valid ones.)
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWT(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    _ = verifier.verify(text, nowSeconds: 1_795_000_000)
    _ = verifier.verify(authorization: "Bearer " + text, nowSeconds: 1_795_000_000)
    _ = verifier.verify(authorization: text, nowSeconds: 1_795_000_000)
    _ = keyring.verify(text, nowSeconds: 1_795_000_000)
    return 0
}

@_cdecl("fuzz_jwt_main")
public func fuzzjwtMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runLibFuzzer(argc, argv, fuzzJWT)
}
