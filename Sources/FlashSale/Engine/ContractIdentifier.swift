/// Longest id the contract allows (SKU, event, user, batch), in bytes.
public let contractIdentifierBytesMax = 64

/// Whether `text` matches the contract's id pattern `[A-Za-z0-9._-]{1,64}` (§1, §3.1).
public func isContractIdentifier(_ text: some StringProtocol) -> Bool {
    let utf8 = text.utf8
    guard (1...contractIdentifierBytesMax).contains(utf8.count) else { return false }
    return utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
