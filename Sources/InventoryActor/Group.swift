/// A group-buy group id: a per-slot sequence number and the slot of its SKU's ledger.
///
/// Like `OrderID`, the slot routes every later call (join, get, payment of a member) to the
/// shard that owns the group, so no global group index exists. Shown to clients as `g` + hex.
public struct GroupID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The packed value: `sequence << 10 | slot`.
    public let rawValue: UInt64

    /// Wraps a packed value (as stored in the database).
    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// Packs `sequence` and `slot`.
    public init(sequence: UInt64, slot: Int) {
        self.rawValue = OrderID(sequence: sequence, slot: slot).rawValue
    }

    /// The slot of the SKU ledger whose stock the group's members hold.
    public var slot: Int { Int(rawValue & (UInt64(OrderID.slotCount) - 1)) }

    /// The sequence number within the slot.
    public var sequence: UInt64 { rawValue >> OrderID.slotBits }

    /// Parses the client form `g<hex>`; nil for anything else.
    public init?(_ text: some StringProtocol) {
        guard let value = parsePrefixedHex(text, prefix: UInt8(ascii: "g")) else { return nil }
        self.rawValue = value
    }

    /// The client form: `g` followed by lowercase hex.
    public var description: String { "g" + String(rawValue, radix: 16) }

    /// Orders by packed value.
    public static func < (lhs: GroupID, rhs: GroupID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// `prefix` then 1...16 lowercase hex digits, as a 64-bit value; nil for anything else.
func parsePrefixedHex(_ text: some StringProtocol, prefix: UInt8) -> UInt64? {
    let utf8 = text.utf8
    guard utf8.count >= 2, utf8.count <= 17, utf8.first == prefix else { return nil }
    var value: UInt64 = 0
    for byte in utf8.dropFirst() {
        guard let digit = hexDigit(byte) else { return nil }
        value = value << 4 | UInt64(digit)
    }
    return value
}

/// The value of one lowercase hex digit; nil for anything else.
func hexDigit(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    default: nil
    }
}

/// Where a group is in its life. Raw values are stored in the database: never renumber.
public enum GroupStatus: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Taking members until `size` of them have paid or the deadline passes.
    case open = 0
    /// `size` members paid: the group and its orders are sold.
    case formed = 1
    /// The deadline passed unformed: its orders were canceled or are to be refunded.
    case failed = 2

    /// The contract's word for the status.
    public var description: String {
        switch self {
        case .open: "open"
        case .formed: "formed"
        case .failed: "failed"
        }
    }
}

/// One group-buy group: which stock, how many members it needs, until when, and its orders.
public struct Group: Sendable, Equatable {
    /// The group id.
    public let id: GroupID
    /// The stock every member holds one unit of.
    public let key: LedgerKey
    /// Members that must pay for the group to form (the item's `group_size`).
    public let size: Int32
    /// What each member pays, fen (the item's `group_price`).
    public let priceFen: Int64
    /// The user who opened it.
    public let leader: String
    /// Opening time, unix ms.
    public let createdAtMs: Int64
    /// Deadline, unix ms: an unformed group fails then.
    public let expiresAtMs: Int64
    /// Current status.
    public internal(set) var status: GroupStatus
    /// Every order that ever joined, in join order (live or not): not stored, rebuilt from orders.
    public internal(set) var members: [OrderID]

    /// Creates a group record (as opened, or as loaded from storage with no members yet).
    public init(
        id: GroupID, key: LedgerKey, size: Int32, priceFen: Int64, leader: String, createdAtMs: Int64,
        expiresAtMs: Int64, status: GroupStatus, members: [OrderID] = []
    ) {
        self.id = id
        self.key = key
        self.size = size
        self.priceFen = priceFen
        self.leader = leader
        self.createdAtMs = createdAtMs
        self.expiresAtMs = expiresAtMs
        self.status = status
        self.members = members
    }
}

/// A group as a buyer sees it: the group and its member counts at one instant.
public struct GroupView: Sendable, Equatable {
    /// The group.
    public var group: Group
    /// Live members: pending and paid member orders.
    public var members: Int
    /// Members that have paid (paid or formed orders).
    public var paid: Int

    /// A group and its counts.
    public init(group: Group, members: Int, paid: Int) {
        self.group = group
        self.members = members
        self.paid = paid
    }
}

/// What opening a group asks for.
public struct OpenGroupRequest: Sendable, Equatable {
    /// The stock.
    public var key: LedgerKey
    /// The leader.
    public var user: String
    /// Members needed.
    public var size: Int32
    /// Group price of one unit, fen.
    public var priceFen: Int64
    /// Now, unix ms.
    public var nowMs: Int64
    /// The leader's payment deadline, unix ms (capped at the group's deadline).
    public var paymentDeadlineMs: Int64
    /// The group's deadline, unix ms.
    public var groupDeadlineMs: Int64

    /// Creates a request.
    public init(key: LedgerKey, user: String, size: Int32, priceFen: Int64, nowMs: Int64, paymentDeadlineMs: Int64, groupDeadlineMs: Int64) {
        self.key = key
        self.user = user
        self.size = size
        self.priceFen = priceFen
        self.nowMs = nowMs
        self.paymentDeadlineMs = paymentDeadlineMs
        self.groupDeadlineMs = groupDeadlineMs
    }
}

/// What `openGroup` / `joinGroup` decided.
public enum GroupJoinResult: Sendable, Equatable {
    /// The caller is a member: its pending order holds one unit.
    case joined(GroupView, Order)
    /// No such group.
    case unknownGroup
    /// No ledger for the group's key.
    case unknownSKU
    /// Formed or failed (a group past its deadline fails first).
    case groupClosed
    /// The caller already has a live order in this group.
    case alreadyMember
    /// `size` live members already.
    case groupFull
    /// The user's pending + paid quantity would pass the item's limit.
    case limitExceeded
    /// No stock available.
    case soldOut
    /// The sale does not take claims now (checked by the shard, in the same step as the stock).
    case saleClosed(SaleClosed)
}

/// The open groups' deadlines and every group of one shard, with the per-event formed count.
struct GroupTable: Sendable {
    var groups: [GroupID: Group] = [:]
    var sequenceBySlot: [Int: UInt64] = [:]
    var deadlines = ExpiryQueue<GroupID>()
    var formedByEvent: [String: Int] = [:]

    /// The id the next group of `slot` gets (not yet taken: see `commitID`).
    func nextIDPeek(slot: Int) -> GroupID {
        GroupID(sequence: sequenceBySlot[slot, default: 0] + 1, slot: slot)
    }

    /// Takes `id` (returned by `nextIDPeek`).
    mutating func commitID(_ id: GroupID) {
        sequenceBySlot[id.slot] = id.sequence
    }
}
