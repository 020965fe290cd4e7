/// The thin actor that owns one `OrderBook`: every claim on its stock is serialized here.
///
/// No method awaits, so nothing interleaves between a check and the change it guards; each
/// change is handed to the `ChangeSink` before the method returns, in decision order.
///
/// It runs on the executor it is given: in the daemon an HTTP event loop, so a request read on
/// that loop is decided there synchronously (`assumeIsolated`), with no task and no hop.
public actor InventoryShard {
    /// This shard's position in `Inventory.shards`.
    public nonisolated let index: Int
    /// Where this shard's code runs (an event loop in the daemon).
    public nonisolated let executor: any SerialExecutor
    var book = OrderBook()
    /// The coupon batches whose slot maps here (InventoryShard+Coupons.swift).
    var coupons = CouponBook()
    let sink: any ChangeSink
    private var observer: (any StockObserver)?
    /// Where this shard publishes which of its ledgers are sold out; nil: nowhere.
    private let hints: SoldOutHints?
    /// Events ops paused, as this shard has applied them. Checked in the same synchronous step
    /// as the stock a claim takes, so once every shard has applied a pause, no claim of that
    /// event is decided until the resume, including claims already queued here (the barrier).
    var pausedEvents: Set<String> = []
    /// Each event's sale window (start ..< end, unix ms), checked against `now` with the stock.
    var saleWindows: [String: Range<Int64>] = [:]
    /// The clock the windows are checked against (the engine's).
    private let now: @Sendable () -> Int64

    /// An empty shard reporting to `sink`, publishing sold-out flags to `hints`, checking sale
    /// windows against `now`, running on `executor` (its own pooled one by default).
    public init(
        index: Int, sink: any ChangeSink, hints: SoldOutHints? = nil, now: @escaping @Sendable () -> Int64 = { 0 },
        executor: (any SerialExecutor)? = nil
    ) {
        self.executor = executor ?? PooledSerialExecutor()
        self.now = now
        self.index = index
        self.sink = sink
        self.hints = hints
    }

    /// The executor this shard's isolation runs on.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Publishes `key`'s sold-out flag; every method that may change a ledger's `available` calls it.
    func publish(_ key: LedgerKey) {
        guard let hints, let counters = book.counters(key) else { return }
        hints.publish(key, available: counters.available)
    }

    /// Reports every later change to `observer` (nil: to nobody); replaces any previous one.
    public func setObserver(_ observer: (any StockObserver)?) {
        self.observer = observer
    }

    /// Adds ledgers (configuration); existing ones keep their counters.
    public func addLedgers(_ ledgers: [(key: LedgerKey, total: Int64, limitPerUser: Int32)]) {
        for ledger in ledgers {
            book.addLedger(ledger.key, total: ledger.total, limitPerUser: ledger.limitPerUser)
            publish(ledger.key)
        }
    }

    /// Pauses or resumes every claim of `event` on this shard.
    public func setPaused(_ event: String, _ paused: Bool) {
        if paused { pausedEvents.insert(event) } else { pausedEvents.remove(event) }
    }

    /// Sets the events' sale windows (start ..< end, unix ms); an event with none is always open.
    public func setSaleWindows(_ windows: [String: Range<Int64>]) {
        saleWindows = windows
    }

    /// Changes an event's sale window (an admin edit of its times).
    public func setSaleWindow(_ event: String, _ window: Range<Int64>) {
        saleWindows[event] = window
    }

    /// Changes a ledger's per-buyer limit (an admin edit before the sale); orders already held stay.
    public func setLimitPerUser(_ key: LedgerKey, _ limit: Int32) {
        precondition(limit >= 1, "limit per user below 1")
        book.ledgers[key]?.limitPerUser = limit
    }

    /// Adds sale windows for events added while running; an event's existing window stays.
    public func addSaleWindows(_ windows: [String: Range<Int64>]) {
        saleWindows.merge(windows) { existing, _ in existing }
    }

    /// Why a claim on `event` is refused now by the sale's state; nil when the sale is open.
    /// Called in the same synchronous step as the stock decision it guards.
    func saleClosed(_ event: String) -> SaleClosed? {
        if pausedEvents.contains(event) { return .paused }
        guard let window = saleWindows[event] else { return nil }
        let nowMs = now()
        if nowMs < window.lowerBound { return .notStarted }
        if nowMs >= window.upperBound { return .ended }
        return nil
    }

    /// Forgets everything: orders, groups, ledgers, coupons, pauses, windows (the engine
    /// rebuilds a shard from storage after a failed commit). The observer and the sink stay.
    public func reset() {
        book = OrderBook()
        coupons = CouponBook()
        pausedEvents = []
        saleWindows = [:]
    }

    /// Reserves stock for a new pending order; `attach` may give something to record with the
    /// new order as one unit (`ChangeSink.record(_:attachment:)`).
    public func reserve(_ request: ReserveRequest, attach: (@Sendable (Order) -> (any Sendable)?)? = nil) -> Recorded<ReserveResult> {
        if let closed = saleClosed(request.key.event) { return Recorded(result: .saleClosed(closed), ticket: 0) }
        let result = book.reserve(request)
        if case .reserved(let order) = result {
            publish(order.key)
            guard let attachment = attach?(order) else { return Recorded(result: result, ticket: record(.order(order))) }
            let ticket = sink.record(.order(order), attachment: attachment)
            observe(.order(order))
            return Recorded(result: result, ticket: ticket)
        }
        return Recorded(result: result, ticket: 0)
    }

    /// Applies a verified payment notification.
    public func pay(_ id: OrderID, transaction: String, amountFen: Int64, nowMs: Int64) -> Recorded<PaymentResult> {
        let result = book.pay(id, transaction: transaction, amountFen: amountFen, nowMs: nowMs)
        // A group payment may have failed or formed its group first: those changes and the
        // order's own go to the journal as one unit, in decision order.
        let ticket: UInt64
        switch result {
        case .paid(let order), .latePaid(let order), .lateRefund(let order):
            ticket = recordOutbox(then: .order(order))
        case .doublePayment(let order):
            ticket = recordOutbox(then: .doublePayment(order, transaction: transaction, atMs: nowMs))
        case .duplicate, .refundRepeated, .unknownOrder, .retired, .amountMismatch:
            ticket = recordOutbox()
        }
        switch result {
        case .paid(let order), .latePaid(let order), .lateRefund(let order), .doublePayment(let order), .duplicate(let order),
            .refundRepeated(let order):
            publish(order.key)
        case .unknownOrder, .retired, .amountMismatch:
            break
        }
        return Recorded(result: result, ticket: ticket)
    }

    /// Cancels a buyer's pending order.
    public func cancel(_ id: OrderID, user: String, nowMs: Int64) -> Recorded<CancelResult> {
        let result = book.cancel(id, user: user, nowMs: nowMs)
        switch result {
        case .canceled(let order), .expiredNow(let order):
            publish(order.key)
            return Recorded(result: result, ticket: record(.order(order)))
        case .closed, .unknownOrder, .retired:
            return Recorded(result: result, ticket: 0)
        }
    }

    /// Expires due orders (at most `limit`, so one call cannot hog the shard); returns them.
    public func expireDue(nowMs: Int64, limit: Int) -> [Order] {
        let expired = book.expireDue(nowMs: nowMs, limit: limit)
        for order in expired {
            _ = record(.order(order))
            publish(order.key)
        }
        return expired
    }

    /// Changes a ledger's stock.
    /// Adds (or, negative, removes) available stock; `attach` may give something to record
    /// with the restock as one unit (`ChangeSink.record(_:attachment:)`).
    public func restock(_ key: LedgerKey, delta: Int64, attach: (@Sendable (RestockResult) -> (any Sendable)?)? = nil) -> Recorded<RestockResult> {
        let result = book.restock(key, delta: delta)
        publish(key)
        if case .restocked = result {
            guard let attachment = attach?(result) else { return Recorded(result: result, ticket: record(.restock(key, delta: delta))) }
            let ticket = sink.record(.restock(key, delta: delta), attachment: attachment)
            observe(.restock(key, delta: delta))
            return Recorded(result: result, ticket: ticket)
        }
        return Recorded(result: result, ticket: 0)
    }

    /// Hands `change` to the sink, then tells the observer the ledger's counters after it.
    func record(_ change: InventoryChange) -> UInt64 {
        let ticket = sink.record(change)
        observe(change)
        return ticket
    }

    /// Hands `changes` to the sink as one unit (durable whole or not at all), telling the observer.
    func recordUnit(_ changes: [InventoryChange]) -> UInt64 {
        let ticket = changes.count == 1 ? sink.record(changes[0]) : sink.recordUnit(changes)
        for change in changes { observe(change) }
        return ticket
    }

    private func observe(_ change: InventoryChange) {
        if let observer {
            let key: LedgerKey
            switch change {
            case .order(let order): key = order.key
            case .restock(let changed, _): key = changed
            case .group(let group): key = group.key
            case .doublePayment, .coupon: return
            }
            if let counters = book.counters(key) { observer.stockChanged(key, counters, by: change) }
        }
    }

    /// One order as it stands.
    public func order(_ id: OrderID) -> Order? { book.order(id) }

    /// One order as it stands, or whether its event has retired (then it is in storage only).
    public func lookup(_ id: OrderID) -> OrderLookup {
        if let order = book.order(id) { return .held(order) }
        return book.wasRetired(id) ? .retired : .unknown
    }

    /// Takes `event`'s orders, groups and ledgers out of this shard (see `OrderBook.retire`).
    public func retire(event: String) -> Result<RetiredPart, RetireRefusal> {
        book.retire(event: event)
    }

    /// Why `event` cannot retire on this shard now; nil when it can.
    public func retireRefusal(event: String) -> RetireRefusal? { book.retireRefusal(event: event) }

    /// Gives out no id at or below the retired floors again (recovery, before any load).
    public func raiseFloors(_ floors: [SequenceFloor]) {
        book.raiseFloors(floors)
    }

    /// Whether `id` names a group of a retired event.
    public func wasRetired(_ id: GroupID) -> Bool { book.wasRetired(id) }

    /// One ledger's counters.
    public func counters(_ key: LedgerKey) -> StockCounters? { book.counters(key) }

    /// Users holding units of a ledger now (nil: unknown ledger).
    public func holderCount(_ key: LedgerKey) -> Int? { book.ledger(key)?.holderCount }

    /// Several ledgers' counters at one instant of this shard.
    public func counters(_ keys: [LedgerKey]) -> [StockCounters?] { keys.map { book.counters($0) } }

    /// Every ledger's counters.
    public func allCounters() -> [(LedgerKey, StockCounters)] { book.allCounters }

    /// Loads orders from storage and applies restocks (recovery); returns total growth forced
    /// by a configuration that now offers less than was held. Nothing is recorded.
    public func restore(orders: [Order], restocks: [(LedgerKey, Int64)]) -> Int64 {
        for (key, delta) in restocks {
            if case .unknownSKU = book.restock(key, delta: delta) {
                book.addLedger(key, total: 0, limitPerUser: .max)
                _ = book.restock(key, delta: max(0, delta))
            }
        }
        let grown = book.restore(orders)
        for (key, _) in book.allCounters { publish(key) }
        return grown
    }

    /// Loads this shard's recorded double charges (recovery).
    public func restore(refunds: [(OrderID, String)]) {
        book.restore(refunds: refunds)
    }

    /// Number of orders held (memory figure).
    public func orderCount() -> Int { book.orderCount }

    /// Traps unless every ledger matches its orders (O(orders)).
    public func verifyInvariants() {
        book.verifyInvariants()
        if let hints {
            for (key, counters) in book.allCounters { hints.verify(key, available: counters.available) }
        }
    }
}
