/// What a new order asks for.
public struct ReserveRequest: Sendable, Equatable {
    /// The stock to hold.
    public var key: LedgerKey
    /// The buyer.
    public var user: String
    /// Units, already checked against 1...limit by the caller's input validation.
    public var qty: Int32
    /// What the buyer must pay, fen.
    public var amountFen: Int64
    /// Discount applied, fen.
    public var discountFen: Int64
    /// Now, unix ms.
    public var nowMs: Int64
    /// Payment deadline, unix ms.
    public var expiresAtMs: Int64
    /// The coupon redeemed (already held on its batch's shard), as the buyer named it.
    public var coupon: String?

    /// Creates a request.
    public init(key: LedgerKey, user: String, qty: Int32, amountFen: Int64, discountFen: Int64, nowMs: Int64, expiresAtMs: Int64, coupon: String? = nil) {
        self.coupon = coupon
        self.key = key
        self.user = user
        self.qty = qty
        self.amountFen = amountFen
        self.discountFen = discountFen
        self.nowMs = nowMs
        self.expiresAtMs = expiresAtMs
    }
}

/// What `reserve` decided.
public enum ReserveResult: Sendable, Equatable {
    /// A new pending order holds the stock.
    case reserved(Order)
    /// No ledger for that key in this book.
    case unknownSKU
    /// The user's pending + paid quantity would pass the limit.
    case limitExceeded
    /// Not enough stock available.
    case soldOut
    /// The sale does not take claims now: paused by ops, not started or ended (checked by the
    /// shard with its clock, in the same step as the stock).
    case saleClosed(SaleClosed)
}

/// Why a shard refused a claim on the sale's state.
public enum SaleClosed: Sendable, Equatable {
    /// Ops paused the event.
    case paused
    /// Before the event's start.
    case notStarted
    /// At or after the event's end.
    case ended
}

/// What a payment notification did to its order.
public enum PaymentResult: Sendable, Equatable {
    /// No such order.
    case unknownOrder
    /// The order's event has retired: the order is in storage only (the engine decides there).
    case retired
    /// The notified amount is not the order's; nothing changed.
    case amountMismatch(expectedFen: Int64)
    /// A pending order is now paid.
    case paid(Order)
    /// The same transaction again: nothing changed.
    case duplicate(Order)
    /// Already paid by another transaction: nothing changed, that transaction is to be refunded.
    case doublePayment(Order)
    /// The same double charge again (a redelivery): nothing changed, nothing new to record;
    /// answered like the first.
    case refundRepeated(Order)
    /// Expired or canceled, the stock could be taken again: paid.
    case latePaid(Order)
    /// Expired or canceled, no stock left: refund pending.
    case lateRefund(Order)
}

/// What `cancel` decided.
public enum CancelResult: Sendable, Equatable {
    /// No such order for that user.
    case unknownOrder
    /// The order's event has retired: the order is in storage only (never pending).
    case retired
    /// The pending order is canceled, its stock back.
    case canceled(Order)
    /// Not pending any more (paid, expired, canceled...): nothing changed.
    case closed(Order)
    /// Pending but past its deadline: it expired now (a change to record), and cannot be canceled.
    case expiredNow(Order)
}

/// What `restock` decided.
public enum RestockResult: Sendable, Equatable {
    /// Done; the counters after.
    case restocked(StockCounters)
    /// No ledger for that key.
    case unknownSKU
    /// A removal larger than what is available.
    case insufficientAvailable(StockCounters)
}

/// The ledgers of one shard and every order on them: the whole decision of every claim.
///
/// Each method is one synchronous step that either changes nothing or moves one order and
/// its ledger together, then checks the invariants. Steps are idempotent by order id: a
/// repeat returns the first outcome (or the order as it now stands) and moves nothing.
public struct OrderBook: Sendable {
    var ledgers: [LedgerKey: StockLedger] = [:]
    var orders = OrderTable()
    var expiries = ExpiryQueue<OrderID>()
    /// Groups of this shard (OrderBook+Groups.swift).
    var groups = GroupTable()
    /// Transactions recorded for refund, by the order they double-charged (rare: a handful).
    var refunds: [OrderID: [String]] = [:]
    /// Changes beyond the one a method's result names (group formation and failure), in
    /// decision order; the shard records them before the result's own change.
    var outbox: [InventoryChange] = []

    /// An empty book.
    public init() {}

    /// Number of orders of every status (memory figure).
    public var orderCount: Int { orders.count }

    /// Adds a ledger, or keeps the existing one (its counters win: they may hold orders).
    public mutating func addLedger(_ key: LedgerKey, total: Int64, limitPerUser: Int32) {
        if ledgers[key] == nil {
            ledgers[key] = StockLedger(total: total, limitPerUser: limitPerUser)
        }
    }

    /// The counters of one ledger.
    public func counters(_ key: LedgerKey) -> StockCounters? { ledgers[key]?.counters }

    /// Every ledger's counters.
    public var allCounters: [(LedgerKey, StockCounters)] { ledgers.map { ($0.key, $0.value.counters) } }

    /// The ledger itself (tests and recovery checks).
    public func ledger(_ key: LedgerKey) -> StockLedger? { ledgers[key] }

    /// One order.
    public func order(_ id: OrderID) -> Order? { orders[id] }

    /// Reserves stock for a new order, giving it a fresh id in the key's slot.
    public mutating func reserve(_ request: ReserveRequest) -> ReserveResult {
        // A new id names no order yet: no look-up for a repeat.
        reserveNew(request, id: orders.nextID(slot: request.key.slot))
    }

    /// Reserves stock for an order with a given id; a repeat returns the order as it stands.
    public mutating func reserve(_ request: ReserveRequest, id: OrderID) -> ReserveResult {
        if let existing = orders[id] { return .reserved(existing) }
        return reserveNew(request, id: id)
    }

    /// Reserves stock for an order under `id`, which names no order.
    private mutating func reserveNew(_ request: ReserveRequest, id: OrderID) -> ReserveResult {
        // Mutate in place: a copy of the ledger would copy its per-user table on every claim.
        guard let outcome = ledgers[request.key]?.reserve(user: request.user, qty: request.qty) else { return .unknownSKU }
        switch outcome {
        case .limitExceeded: return .limitExceeded
        case .soldOut: return .soldOut
        case .reserved: break
        }
        let order = Order(
            id: id, key: request.key, user: request.user, qty: request.qty, amountFen: request.amountFen,
            discountFen: request.discountFen, createdAtMs: request.nowMs, expiresAtMs: request.expiresAtMs,
            status: .pending, transaction: nil, coupon: request.coupon)
        orders.store(order)
        expiries.push(deadlineMs: order.expiresAtMs, id: id)
        return .reserved(order)
    }

    /// Applies a payment notification that has already passed signature, time and nonce checks.
    public mutating func pay(_ id: OrderID, transaction: String, amountFen: Int64, nowMs: Int64) -> PaymentResult {
        guard var order = orders[id] else { return orders.wasRemoved(id) ? .retired : .unknownOrder }
        guard order.amountFen == amountFen else { return .amountMismatch(expectedFen: order.amountFen) }
        if let group = order.group {
            // A group past its deadline fails before any payment of its members counts.
            failGroupIfDue(group, nowMs: nowMs)
            order = orders[id]!
        }
        if order.status == .pending && nowMs >= order.expiresAtMs {
            // Past its deadline but not yet swept: it expired; the payment is late.
            order = move(order, to: .expired)
        }
        switch order.status {
        case .pending:
            order.status = .paid
            order.transaction = transaction
            if let group = order.group {
                // Stays reserved until the group forms.
                orders.store(order)
                if formGroupIfComplete(group) { order = orders[id]! }
                return .paid(order)
            }
            ledgers[order.key]!.commit(qty: order.qty)
            orders.store(order)
            return .paid(order)
        case .paid, .formed, .refundPending:
            if order.transaction == transaction { return .duplicate(order) }
            if refunds[id]?.contains(transaction) == true { return .refundRepeated(order) }
            refunds[id, default: []].append(transaction)
            return .doublePayment(order)
        case .expired, .canceled:
            order.transaction = transaction
            if order.group != nil { return latePayGroupOrder(order, nowMs: nowMs) }
            if order.coupon != nil {
                // Its coupon went back to its owner at expiry or cancel and may be spent
                // elsewhere by now: taking the discount again could spend it twice.
                order.status = .refundPending
                orders.store(order)
                return .lateRefund(order)
            }
            if ledgers[order.key]!.retake(user: order.user, qty: order.qty) {
                order.status = .paid
                orders.store(order)
                return .latePaid(order)
            }
            order.status = .refundPending
            orders.store(order)
            return .lateRefund(order)
        }
    }

    /// Cancels `user`'s pending order; another user's order is unknown to them.
    public mutating func cancel(_ id: OrderID, user: String, nowMs: Int64) -> CancelResult {
        guard let order = orders[id] else { return orders.wasRemoved(id) ? .retired : .unknownOrder }
        guard order.user == user else { return .unknownOrder }
        guard order.status == .pending else { return .closed(order) }
        if nowMs >= order.expiresAtMs { return .expiredNow(move(order, to: .expired)) }
        return .canceled(move(order, to: .canceled))
    }

    /// Expires every pending order whose deadline is at or before `nowMs`, at most `limit`.
    public mutating func expireDue(nowMs: Int64, limit: Int = .max) -> [Order] {
        var expired: [Order] = []
        while expired.count < limit, let id = expiries.popDue(nowMs: nowMs) {
            guard let order = orders[id], order.status == .pending else { continue }
            expired.append(move(order, to: .expired))
        }
        return expired
    }

    /// Changes a ledger's stock by `delta` units.
    public mutating func restock(_ key: LedgerKey, delta: Int64) -> RestockResult {
        guard let done = ledgers[key]?.restock(delta: delta) else { return .unknownSKU }
        guard done else { return .insufficientAvailable(ledgers[key]!.counters) }
        return .restocked(ledgers[key]!.counters)
    }

    /// Loads an order from storage (recovery), holding its stock as its status says.
    ///
    /// Returns how many units the ledger's total had to grow because the configuration now
    /// offers less than was already held (0 normally). A ledger unknown to the configuration
    /// is created empty so its orders stay readable.
    public mutating func restore(_ order: Order) -> Int64 {
        restoreOne(order)
    }

    /// Loads many orders (recovery), as `restore(_:)` one by one, after sizing every table
    /// they grow once: each ledger's holders, each slot's orders, the expiry heap.
    /// Loads the double charges recorded for refund (recovery), so a redelivery of one is
    /// recognized as the same.
    public mutating func restore(refunds restored: [(OrderID, String)]) {
        for (id, transaction) in restored { refunds[id, default: []].append(transaction) }
    }

    public mutating func restore(_ orders: [Order]) -> Int64 {
        var holders: [LedgerKey: Int] = [:]
        var perSlot: [Int: Int] = [:]
        var pending = 0
        for order in orders {
            if order.status.countsTowardLimit { holders[order.key, default: 0] += 1 }
            perSlot[order.id.slot, default: 0] += 1
            if order.status == .pending { pending += 1 }
        }
        for (key, count) in holders { ledgers[key]?.reserveHolders(adding: count) }
        for (slot, count) in perSlot { self.orders.reserveCapacity(slot: slot, adding: count) }
        expiries.reserveCapacity(adding: pending)
        var grown: Int64 = 0
        for order in orders { grown += restoreOne(order) }
        return grown
    }

    private mutating func restoreOne(_ order: Order) -> Int64 {
        precondition(orders[order.id] == nil, "order \(order.id) restored twice")
        // One hash of the key per order (a restart does this millions of times).
        var ledger = ledgers.index(forKey: order.key)
        if ledger == nil {
            ledgers[order.key] = StockLedger(total: 0, limitPerUser: .max)
            ledger = ledgers.index(forKey: order.key)
        }
        var grown: Int64 = 0
        if order.status.countsTowardLimit {
            grown = ledgers.values[ledger!].restoreHeld(user: order.user, qty: order.qty, sold: order.holdsSold)
        }
        if let group = order.group {
            precondition(groups.groups[group] != nil, "order \(order.id) of unknown group \(group)")
            if !Self.isDeadMember(order) { groups.groups[group]!.members.append(order.id) }
        }
        orders.store(order)
        if order.status == .pending { expiries.push(deadlineMs: order.expiresAtMs, id: order.id) }
        return grown
    }

    /// Pending → expired or canceled: stock back to available.
    mutating func move(_ order: Order, to status: OrderStatus) -> Order {
        precondition(order.status == .pending && (status == .expired || status == .canceled))
        ledgers[order.key]!.release(user: order.user, qty: order.qty)
        var moved = order
        moved.status = status
        orders.store(moved)
        return moved
    }

    /// Traps unless every ledger's counters equal what its orders hold.
    ///
    /// O(orders): for tests, recovery and checkpoints, not for every step.
    public func verifyInvariants() {
        var reserved: [LedgerKey: Int64] = [:]
        var sold: [LedgerKey: Int64] = [:]
        for order in orders.all {
            if order.holdsReserved { reserved[order.key, default: 0] += Int64(order.qty) }
            if order.holdsSold { sold[order.key, default: 0] += Int64(order.qty) }
        }
        for (key, ledger) in ledgers {
            ledger.verifyInvariants()
            precondition(ledger.counters.reserved == reserved[key, default: 0], "\(key): reserved \(ledger.counters.reserved) != pending orders \(reserved[key, default: 0])")
            precondition(ledger.counters.sold == sold[key, default: 0], "\(key): sold \(ledger.counters.sold) != paid orders \(sold[key, default: 0])")
        }
        verifyGroupInvariants()
    }
}
