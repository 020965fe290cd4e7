import FlashSaleJournal
import InventoryActor

/// The change feed's wire format (§6): which changes are reported, under which type,
/// and the JSON of each event's `data` and of the event itself. The journal stores each reported
/// change in its own transaction; the admin listing and the webhooks read it back rendered here.
public struct ChangeFeedJSON: ChangeFeedRenderer {
    let clock: any SaleClock

    /// A renderer stamping events with `clock`.
    public init(clock: any SaleClock) {
        self.clock = clock
    }

    /// Every type the feed reports.
    public static let types: [String] = [
        "order.created", "order.paid", "order.expired", "order.canceled", "order.formed", "order.refund_pending",
        "payment.refund", "group.formed", "group.failed", "coupon.claimed",
    ]

    public func eventTime(of change: InventoryChange) -> Int64? {
        switch change {
        case .order: clock.nowMs()
        case .doublePayment(_, _, let atMs): atMs
        case .group(let group): group.status == .open ? nil : clock.nowMs()
        case .coupon(let coupon): coupon.claimedAtMs
        case .restock: nil
        }
    }

    public func event(for change: InventoryChange) -> (type: String, data: [UInt8]) {
        switch change {
        case .order(let order):
            (Self.type(of: order.status), Self.order(order))
        case .doublePayment(let order, let transaction, _):
            ("payment.refund", Self.order(order, refund: transaction))
        case .group(let group):
            (group.status == .failed ? "group.failed" : "group.formed", Self.group(group))
        case .coupon(let coupon):
            ("coupon.claimed", Self.coupon(coupon))
        case .restock(let key, let delta):
            // Not reported (`eventTime` is nil); rendered only for completeness.
            ("restock", JSONWriter.object { json in
                json.field("event", key.event)
                json.field("sku", key.sku)
                json.field("delta", delta)
            })
        }
    }

    /// The event type an order's record reports: its status is what changed.
    static func type(of status: OrderStatus) -> String {
        switch status {
        case .pending: "order.created"
        case .paid: "order.paid"
        case .expired: "order.expired"
        case .canceled: "order.canceled"
        case .formed: "order.formed"
        case .refundPending: "order.refund_pending"
        }
    }

    /// The order object of §3.4 with `user` (and its group, coupon and paying transaction if
    /// any); with `refund`, the transaction to give back.
    public static func order(_ order: Order, refund: String? = nil) -> [UInt8] {
        JSONWriter.object(capacity: 320) { json in
            writeOrder(order, into: &json, full: true)
            if let refund { json.field("refund", refund) }
        }
    }

    /// The members of the order object: the buyer's (§3.4: order, event, sku, qty, status,
    /// amount, discount, expires_at) or, `full`, the feed's, which adds the buyer, the creation
    /// time, and the paying transaction, group and coupon when there are.
    public static func writeOrder(_ order: Order, into json: inout JSONWriter, full: Bool) {
        json.field("order", order.id.description)
        json.field("event", order.key.event)
        json.field("sku", order.key.sku)
        if full { json.field("user", order.user) }
        json.field("qty", Int(order.qty))
        json.field("status", order.status.description)
        json.field("amount", order.amountFen)
        json.field("discount", order.discountFen)
        if full { json.timeField("created_at", ms: order.createdAtMs) }
        json.timeField("expires_at", ms: order.expiresAtMs)
        guard full else { return }
        if let transaction = order.transaction { json.field("transaction", transaction) }
        if let group = order.group { json.field("group", group.description) }
        if let coupon = order.coupon { json.field("coupon", coupon) }
    }

    static func group(_ group: Group) -> [UInt8] {
        JSONWriter.object { json in
            json.field("group", group.id.description)
            json.field("event", group.key.event)
            json.field("sku", group.key.sku)
            json.field("size", Int(group.size))
            json.field("status", group.status.description)
            json.field("price", group.priceFen)
            json.field("leader", group.leader)
            json.timeField("expires_at", ms: group.expiresAtMs)
        }
    }

    static func coupon(_ coupon: Coupon) -> [UInt8] {
        JSONWriter.object { json in
            json.field("coupon", coupon.code.description)
            json.field("batch", coupon.batch)
            json.field("user", coupon.owner)
            json.field("value", coupon.valueFen)
            json.field("min_spend", coupon.minSpendFen)
            json.timeField("claimed_at", ms: coupon.claimedAtMs)
            json.timeField("expires_at", ms: coupon.expiresAtMs)
        }
    }

    /// A stored change as the feed sends it: `{"id", "type", "at", "data"}`.
    public static func event(_ change: StoredChange) -> [UInt8] {
        var json = JSONWriter(capacity: change.data.count + 96)
        write(change, into: &json)
        return json.bytes
    }

    /// Writes `change` as an element of the array `json` is in (or as the document).
    public static func write(_ change: StoredChange, into json: inout JSONWriter) {
        json.object { json in
            json.field("id", change.id)
            json.field("type", change.type)
            json.timeField("at", ms: change.atMs)
            json.rawField("data", json: change.data)
        }
    }
}
