import FlashSale
import FuzzSupport

let signature = PaymentSignature(secret: "fuzz-payment-secret")

/// The payment-notification verifier: input is `timestamp\nnonce\nsignature\nbody`; no crash,
/// and a signature is valid only when it is the one `sign` computes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPayment(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(fuzzInput(data, size))
    let parts = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 3, omittingEmptySubsequences: false)
    guard parts.count == 4 else { return 0 }
    let timestamp = String(decoding: parts[0], as: UTF8.self)
    let nonce = String(decoding: parts[1], as: UTF8.self)
    let hex = String(decoding: parts[2], as: UTF8.self)
    let body = Array(parts[3])
    if signature.isValid(timestamp: timestamp, nonce: nonce, body: body, signatureHex: hex) {
        precondition(hex == signature.sign(timestamp: timestamp, nonce: nonce, body: body), "forged signature accepted")
    }
    if let seconds = PaymentSignature.timestampSeconds(timestamp) {
        _ = PaymentSignature.isFresh(timestampSeconds: seconds, nowSeconds: 1_795_000_000)
    }
    _ = PaymentSignature.isValidNonce(nonce)
    _ = PaymentNotification.parse(body)
    return 0
}

@_cdecl("fuzz_payment_main")
public func fuzzpaymentMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runLibFuzzer(argc, argv, fuzzPayment)
}
