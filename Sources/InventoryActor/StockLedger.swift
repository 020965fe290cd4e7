/// The four stock counters of one ledger at one instant.
public struct StockCounters: Sendable, Equatable, CustomStringConvertible {
    /// Everything ever put on sale (configured stock plus restocks).
    public var total: Int64
    /// Free to reserve.
    public var available: Int64
    /// Held by pending orders (and paid orders of groups not yet formed).
    public var reserved: Int64
    /// Sold: paid seckill orders and orders of formed groups.
    public var sold: Int64

    /// Creates a counters value.
    public init(total: Int64, available: Int64, reserved: Int64, sold: Int64) {
        self.total = total
        self.available = available
        self.reserved = reserved
        self.sold = sold
    }

    /// `total=.. available=.. reserved=.. sold=..`
    public var description: String {
        "total=\(total) available=\(available) reserved=\(reserved) sold=\(sold)"
    }
}

/// The stock of one (event, SKU): its counters and each user's pending + paid quantity.
///
/// Every method is synchronous and returns its outcome; the caller (`OrderBook`) makes the
/// per-order decisions and guarantees each order moves the ledger at most once per transition.
public struct StockLedger: Sendable {
    /// Counters; `total == available + reserved + sold` after every method.
    public private(set) var counters: StockCounters
    /// Most units one user may hold (pending + paid) in this ledger.
    public internal(set) var limitPerUser: Int32
    /// Units each user holds (pending + paid); users at zero are removed to bound memory.
    private var quantityByUser: [String: Int32] = [:]

    /// A ledger with `total` units on sale, none held.
    public init(total: Int64, limitPerUser: Int32) {
        precondition(total >= 0, "negative stock")
        precondition(limitPerUser >= 1, "limit per user below 1")
        self.counters = StockCounters(total: total, available: total, reserved: 0, sold: 0)
        self.limitPerUser = limitPerUser
    }

    /// What `reserve` decided.
    public enum ReserveOutcome: Sendable, Equatable {
        /// `qty` moved from available to reserved.
        case reserved
        /// The user's pending + paid quantity would pass `limitPerUser`.
        case limitExceeded
        /// Fewer than `qty` units available.
        case soldOut
    }

    /// Units `user` holds now (pending + paid).
    public func quantity(of user: String) -> Int32 {
        quantityByUser[user, default: 0]
    }

    /// Number of users holding anything (memory figure).
    public var holderCount: Int { quantityByUser.count }

    /// Makes room for `more` holders, so a bulk restore grows the table once instead of
    /// rehashing it a dozen times.
    public mutating func reserveHolders(adding more: Int) {
        quantityByUser.reserveCapacity(quantityByUser.count + more)
    }

    /// Reserves `qty` for `user`: the limit is checked before the stock, as the contract orders them.
    public mutating func reserve(user: String, qty: Int32) -> ReserveOutcome {
        precondition(qty >= 1, "reserve of a non-positive quantity")
        let limit = Int64(limitPerUser)
        guard counters.available >= Int64(qty) else {
            // Sold out, unless the limit refuses first: one look-up, and nothing is added.
            let held = quantityByUser[user] ?? 0
            return Int64(held) + Int64(qty) > limit ? .limitExceeded : .soldOut
        }
        // One hash of the user, found or added in place (a new buyer is the common case).
        let taken: Bool = {
            let held = Int64($0)
            guard held + Int64(qty) <= limit else { return false }
            $0 += qty
            return true
        }(&quantityByUser[user, default: 0])
        guard taken else {
            // Never left behind: a buyer refused before holding anything is no holder.
            if quantityByUser[user] == 0 { quantityByUser[user] = nil }
            return .limitExceeded
        }
        counters.available -= Int64(qty)
        counters.reserved += Int64(qty)
        verifyInvariants()
        return .reserved
    }

    /// Moves `qty` reserved units to sold (a pending order was paid).
    public mutating func commit(qty: Int32) {
        precondition(counters.reserved >= Int64(qty), "commit of more than reserved")
        counters.reserved -= Int64(qty)
        counters.sold += Int64(qty)
        verifyInvariants()
    }

    /// Gives `qty` reserved units of `user` back to available (cancel, expiry).
    public mutating func release(user: String, qty: Int32) {
        precondition(counters.reserved >= Int64(qty), "release of more than reserved")
        counters.reserved -= Int64(qty)
        counters.available += Int64(qty)
        dropQuantity(of: user, qty)
        verifyInvariants()
    }

    /// Takes `qty` available units straight to sold for `user` (a late payment); false if not enough.
    ///
    /// The per-user limit is not checked: the buyer has already paid, and the contract makes a
    /// late payment `paid` whenever the stock can be taken.
    public mutating func retake(user: String, qty: Int32) -> Bool {
        guard counters.available >= Int64(qty) else { return false }
        counters.available -= Int64(qty)
        counters.sold += Int64(qty)
        quantityByUser[user, default: 0] += qty
        verifyInvariants()
        return true
    }

    /// Takes `qty` available units back to reserved for `user` (a late payment of a group order
    /// rejoining its open group); false if not enough. The limit is not checked, as in `retake`.
    public mutating func retakeReserved(user: String, qty: Int32) -> Bool {
        guard counters.available >= Int64(qty) else { return false }
        counters.available -= Int64(qty)
        counters.reserved += Int64(qty)
        quantityByUser[user, default: 0] += qty
        verifyInvariants()
        return true
    }

    /// Adds `delta` units (negative removes); only available units can be removed.
    public mutating func restock(delta: Int64) -> Bool {
        // Overflow-checked: the delta comes from an operator's typing.
        let (total, totalOverflow) = counters.total.addingReportingOverflow(delta)
        let (available, availableOverflow) = counters.available.addingReportingOverflow(delta)
        guard !totalOverflow, !availableOverflow, available >= 0 else { return false }
        counters.total = total
        counters.available = available
        verifyInvariants()
        return true
    }

    /// Puts back stock held by an order loaded from storage, growing `total` if the
    /// configuration now offers less than was already held; returns the growth (0 normally).
    public mutating func restoreHeld(user: String, qty: Int32, sold: Bool) -> Int64 {
        var grown: Int64 = 0
        if counters.available < Int64(qty) {
            grown = Int64(qty) - counters.available
            counters.total += grown
            counters.available += grown
        }
        counters.available -= Int64(qty)
        if sold { counters.sold += Int64(qty) } else { counters.reserved += Int64(qty) }
        quantityByUser[user, default: 0] += qty
        verifyInvariants()
        return grown
    }

    private mutating func dropQuantity(of user: String, _ qty: Int32) {
        let left = quantityByUser[user, default: 0] - qty
        precondition(left >= 0, "user quantity below zero")
        quantityByUser[user] = left == 0 ? nil : left
    }

    /// Traps if the counters break `total == available + reserved + sold` or go negative.
    public func verifyInvariants() {
        precondition(counters.available >= 0, "available < 0: \(counters)")
        precondition(counters.reserved >= 0, "reserved < 0: \(counters)")
        precondition(counters.sold >= 0, "sold < 0: \(counters)")
        precondition(
            counters.total == counters.available + counters.reserved + counters.sold,
            "total != available + reserved + sold: \(counters)")
    }
}
