/// Where an order is in its life. Raw values are stored in the database: never renumber.
public enum OrderStatus: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Stock is reserved, awaiting payment.
    case pending = 0
    /// Paid: a seckill order's stock is sold.
    case paid = 1
    /// Not paid by `expiresAtMs`: its stock went back.
    case expired = 2
    /// Canceled by its buyer while pending: its stock went back.
    case canceled = 3
    /// Paid when its stock could not be had (late payment, failed group): money goes back.
    case refundPending = 4
    /// A group order whose group filled: sold.
    case formed = 5

    /// The contract's word for the status.
    public var description: String {
        switch self {
        case .pending: "pending"
        case .paid: "paid"
        case .expired: "expired"
        case .canceled: "canceled"
        case .refundPending: "refund_pending"
        case .formed: "formed"
        }
    }

    /// Whether a seckill order in this status holds stock as `reserved` (see `Order.holdsReserved`
    /// for group orders, whose paid units stay reserved until the group forms).
    public var holdsReserved: Bool { self == .pending }

    /// Whether a seckill order in this status counts as `sold` (see `Order.holdsSold`).
    public var holdsSold: Bool { self == .paid || self == .formed }

    /// Whether the order's quantity counts against its user's `limit_per_user`.
    public var countsTowardLimit: Bool { holdsReserved || holdsSold }

    /// How far along an order is; a status only ever moves to a rank at least as high,
    /// except a late payment (expired/canceled → paid), which the contract allows.
    var isClosedUnpaid: Bool { self == .expired || self == .canceled }
}

/// One claim on stock: who, how many, for how much, until when, and where it stands.
public struct Order: Sendable, Equatable {
    /// The order id.
    public let id: OrderID
    /// The stock it holds.
    public let key: LedgerKey
    /// The buyer's user id.
    public let user: String
    /// Units held.
    public let qty: Int32
    /// What the buyer must pay, in fen.
    public let amountFen: Int64
    /// Discount applied (coupon), in fen.
    public let discountFen: Int64
    /// Creation time, unix ms.
    public let createdAtMs: Int64
    /// Payment deadline, unix ms.
    public let expiresAtMs: Int64
    /// Current status.
    public internal(set) var status: OrderStatus
    /// The payment transaction that paid it, once paid.
    public internal(set) var transaction: String?
    /// The group it is a member order of; nil for a seckill order.
    public let group: GroupID?
    /// The coupon it redeems, as the buyer named it; nil when none.
    public let coupon: String?

    /// Whether it holds its stock as `reserved`: pending, or paid in a group not yet formed.
    public var holdsReserved: Bool { status == .pending || (status == .paid && group != nil) }

    /// Whether it holds its stock as `sold`: a paid seckill order, or a formed group order.
    public var holdsSold: Bool { status == .formed || (status == .paid && group == nil) }

    /// Creates an order record (as reserved, or as loaded from storage).
    public init(
        id: OrderID, key: LedgerKey, user: String, qty: Int32, amountFen: Int64, discountFen: Int64,
        createdAtMs: Int64, expiresAtMs: Int64, status: OrderStatus, transaction: String?,
        group: GroupID? = nil, coupon: String? = nil
    ) {
        self.id = id
        self.key = key
        self.user = user
        self.qty = qty
        self.amountFen = amountFen
        self.discountFen = discountFen
        self.createdAtMs = createdAtMs
        self.expiresAtMs = expiresAtMs
        self.status = status
        self.transaction = transaction
        self.group = group
        self.coupon = coupon
    }
}

/// Where an order id stands in memory.
public enum OrderLookup: Sendable, Equatable {
    /// Held: the order as it stands.
    case held(Order)
    /// Its event has retired: the order is in storage only.
    case retired
    /// No such order.
    case unknown
}
