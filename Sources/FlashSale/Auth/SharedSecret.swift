import Crypto

/// A password-like secret (the ops `AUTH` password, the admin bearer token), kept as its
/// SHA-256 digest and compared in time independent of where a candidate differs and of either
/// length: both sides are hashed to 32 bytes and the digests compared by swift-crypto's
/// constant-time equality. An empty secret matches nothing.
public struct SharedSecret: Sendable {
    private let digest: SHA256Digest?

    /// The secret `text`.
    public init(_ text: String) {
        digest = text.isEmpty ? nil : SHA256.hash(data: Array(text.utf8))
    }

    /// Whether `candidate` is the secret.
    public func matches(_ candidate: some StringProtocol) -> Bool {
        guard let digest else { return false }
        return SHA256.hash(data: Array(candidate.utf8)) == digest
    }
}

/// Bytes as lowercase hex (signatures and digests).
public enum LowercaseHex {
    /// `bytes` as two lowercase hex digits each.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits: StaticString = "0123456789abcdef"
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits.utf8Start[Int(byte >> 4)])
            text.append(digits.utf8Start[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
