/// The stock of one SKU in one event: the unit that one `StockLedger` counts.
public struct LedgerKey: Hashable, Sendable, CustomStringConvertible {
    /// The event id.
    public let event: String
    /// The SKU id.
    public let sku: String
    /// The slot this key's stock and orders live in; stable across processes and shard counts.
    ///
    /// Computed once here: every claim routes by it, and hashing the strings twice per claim
    /// showed in profiles.
    public let slot: Int
    /// FNV-1a 64 of the key (`fingerprint(event:sku:)`): what `hash(into:)` feeds, so a ledger
    /// lookup hashes one integer instead of both strings again.
    let fingerprint: UInt64

    /// Creates a key for `sku` in `event`.
    public init(event: String, sku: String) {
        self.event = event
        self.sku = sku
        self.fingerprint = Self.fingerprint(event: event, sku: sku)
        self.slot = Int(fingerprint % UInt64(OrderID.slotCount))
    }

    /// FNV-1a 64 over `event`, a separator and `sku`. Not `Hasher`: it is seeded per process,
    /// and slots (the fingerprint modulo the slot count) are persisted inside order ids.
    static func fingerprint(event: String, sku: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in event.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        hash = (hash ^ 0xff) &* 0x100_0000_01b3
        for byte in sku.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return hash
    }

    /// The slot of `sku` in `event`.
    static func slot(event: String, sku: String) -> Int {
        Int(fingerprint(event: event, sku: sku) % UInt64(OrderID.slotCount))
    }

    /// Keys are equal when event and SKU are (the slot follows from them).
    public static func == (lhs: LedgerKey, rhs: LedgerKey) -> Bool {
        lhs.fingerprint == rhs.fingerprint && lhs.event == rhs.event && lhs.sku == rhs.sku
    }

    /// Hashes the fingerprint (equal keys have equal fingerprints; the table's own seeded
    /// hasher still mixes it, so a crafted collision costs one extra comparison, not a flood).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(fingerprint)
    }

    /// `event/sku`.
    public var description: String { "\(event)/\(sku)" }
}

/// An order id: a per-slot sequence number and the slot of the stock it holds.
///
/// The slot inside the id routes every later call (pay, cancel, get) to the shard that owns
/// the order, so no global order index exists. Shown to clients as `o` + lowercase hex.
public struct OrderID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Number of slots; a power of two so the slot is the low bits. Fixed forever: it is in every id.
    public static let slotCount = 1024
    /// Bits of the slot in a packed id.
    static let slotBits: UInt64 = 10

    /// The packed value: `sequence << 10 | slot`.
    public let rawValue: UInt64

    /// Wraps a packed value (as stored in the database).
    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// Packs `sequence` and `slot`.
    public init(sequence: UInt64, slot: Int) {
        precondition(slot >= 0 && slot < Self.slotCount, "slot out of range")
        precondition(sequence < (1 << (64 - Self.slotBits)), "order sequence overflow")
        self.rawValue = sequence << Self.slotBits | UInt64(slot)
    }

    /// The slot of the stock this order holds.
    public var slot: Int { Int(rawValue & (UInt64(Self.slotCount) - 1)) }

    /// The sequence number within the slot.
    public var sequence: UInt64 { rawValue >> Self.slotBits }

    /// Parses the client form `o<hex>`; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let utf8 = text.utf8
        guard utf8.count >= 2, utf8.count <= 17, utf8.first == UInt8(ascii: "o") else { return nil }
        var value: UInt64 = 0
        for byte in utf8.dropFirst() {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        self.rawValue = value
    }

    /// The client form: `o` followed by lowercase hex.
    public var description: String { "o" + String(rawValue, radix: 16) }

    /// Orders by packed value.
    public static func < (lhs: OrderID, rhs: OrderID) -> Bool { lhs.rawValue < rhs.rawValue }
}
