import Crypto

/// Signs and checks payment notifications (§3.7): `X-Pay-Signature` is the lowercase
/// hex of HMAC-SHA256 keyed with `secrets.payment` over
/// `timestamp + "\n" + nonce + "\n" + raw body bytes`.
///
/// The comparison is constant-time (swift-crypto's). Freshness (`isFresh`) and replay
/// (`NonceCache`) are separate checks that the handler runs after this one.
public struct PaymentSignature: Sendable {

    private let key: SymmetricKey

    /// Creates a signer/checker for `secret` (its UTF-8 bytes are the HMAC key).
    public init(secret: String) {
        self.key = SymmetricKey(data: Array(secret.utf8))
    }

    /// Whether `signatureHex` is the signature of this notification.
    ///
    /// Anything but exactly 64 lowercase hex digits is invalid, so there is one accepted
    /// spelling of each signature.
    public func isValid(
        timestamp: some StringProtocol,
        nonce: some StringProtocol,
        body: some Collection<UInt8>,
        signatureHex: some StringProtocol
    ) -> Bool {
        guard let expected = Self.decodeLowercaseHex(signatureHex), expected.count == SHA256.byteCount else {
            return false
        }
        let mac = authenticationCode(timestamp: timestamp, nonce: nonce, body: body)
        return mac == expected  // swift-crypto's `==` against bytes is constant-time
    }

    /// The signature of a notification, as lowercase hex (for tests and load generators).
    public func sign(timestamp: String, nonce: String, body: [UInt8]) -> String {
        LowercaseHex.encode(authenticationCode(timestamp: timestamp, nonce: nonce, body: body))
    }

    /// The unix seconds in an `X-Pay-Timestamp` value: 1 to 18 ASCII digits, nothing else.
    public static func timestampSeconds(_ text: some StringProtocol) -> Int64? {
        let utf8 = text.utf8
        guard (1...18).contains(utf8.count) else { return nil }
        var value: Int64 = 0
        for byte in utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// Whether `timestampSeconds` is within `EngineLimits.paymentTimestampSkewSecondsMax` of `nowSeconds`, either way.
    public static func isFresh(timestampSeconds: Int64, nowSeconds: Int64) -> Bool {
        let (gap, overflow) = nowSeconds.subtractingReportingOverflow(timestampSeconds)
        return !overflow && gap.magnitude <= UInt64(EngineLimits.paymentTimestampSkewSecondsMax)
    }

    /// Whether `nonce` is 1..64 visible ASCII characters (0x21...0x7E).
    public static func isValidNonce(_ nonce: some StringProtocol) -> Bool {
        let utf8 = nonce.utf8
        guard (1...EngineLimits.paymentNonceBytesMax).contains(utf8.count) else { return false }
        return utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    // MARK: Internals

    private func authenticationCode(
        timestamp: some StringProtocol,
        nonce: some StringProtocol,
        body: some Collection<UInt8>
    ) -> HMAC<SHA256>.MAC {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: Array(timestamp.utf8))
        hmac.update(data: [UInt8(ascii: "\n")])
        hmac.update(data: Array(nonce.utf8))
        hmac.update(data: [UInt8(ascii: "\n")])
        let streamed: Void? = body.withContiguousStorageIfAvailable { buffer in
            hmac.update(data: UnsafeRawBufferPointer(buffer))
        }
        if streamed == nil {
            hmac.update(data: Array(body))
        }
        return hmac.finalize()
    }

    /// The bytes of lowercase hex `text`; nil for odd length, uppercase or any non-hex byte.
    static func decodeLowercaseHex(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = text.utf8
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var high: UInt8? = nil
        for character in utf8 {
            let nibble: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
            default: return nil
            }
            if let pending = high {
                bytes.append(pending << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return bytes
    }
}
