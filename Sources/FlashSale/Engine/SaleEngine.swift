import FlashSaleJournal
import InventoryActor
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A seckill order request, as read from the HTTP body.
public struct PlaceOrderRequest: Sendable {
    /// The buyer (token `sub`).
    public var user: String
    /// The event id from the path.
    public var event: String
    /// The SKU from the body.
    public var sku: String
    /// The quantity from the body, not yet range-checked.
    public var qty: Int64
    /// The coupon to redeem, as the buyer named it.
    public var coupon: String?

    /// Creates a request.
    public init(user: String, event: String, sku: String, qty: Int64, coupon: String? = nil) {
        self.coupon = coupon
        self.user = user
        self.event = event
        self.sku = sku
        self.qty = qty
    }
}

/// What a payment notification was answered.
public struct PaymentAck: Sendable, Equatable {
    /// The order's status after it.
    public var status: OrderStatus
    /// The same transaction was seen before.
    public var duplicate: Bool = false
    /// The order was already paid by another transaction: this one is to be refunded.
    public var refundTransaction: String? = nil
    /// The payment arrived after expiry or cancel and the stock was taken again.
    public var late: Bool = false
}

/// One item of an event with its live counters.
public struct ItemView: Sendable {
    /// The configured item.
    public var item: ItemConfig
    /// Its counters at the instant of the read.
    public var counters: StockCounters

    /// An item and its counters.
    public init(item: ItemConfig, counters: StockCounters) {
        self.item = item
        self.counters = counters
    }
}

/// The engine behind every interface: buyers' HTTP, payment notifications, ops.
///
/// It checks requests in the contract's order, lets the owning shard decide, and answers
/// only after the journal has made the decision durable.
public final class SaleEngine: Sendable {

    /// The events.
    public let catalog: EventCatalog
    /// The sharded stock.
    public let inventory: Inventory
    /// The journal; nil when `journal.enabled` is false (benchmarks only).
    public let journal: Journal?
    /// Reads the journal's change feed and orders on a connection of its own; nil without a journal.
    public let reader: JournalReader?
    /// Where each webhook receiver's delivery stands.
    public let outbox: WebhookOutbox
    /// Change events are kept at least this long, ms (`changes.retention`).
    public let feedRetentionMs: Int64
    /// How long after its end an event stays in memory, ms (`memory.retention`; SaleEngine+Retire.swift).
    public let memoryRetentionMs: Int64
    /// The retired events and those retiring now.
    let retirement = Mutex(Retirement())
    /// Payments of retired orders, decided one at a time against storage.
    let retiredPayments = TurnTaking()
    /// The clock.
    public let clock: any SaleClock
    /// Counters for ops and metrics.
    public let stats = EngineStats()
    /// First answers to `Idempotency-Key` requests (§3.4), recovered from the journal.
    public let idempotency = IdempotencyStore()
    let paymentWindowMs: Int64
    let groupWindowMs: Int64
    /// Coupon batches by id (SaleEngine+Coupons.swift).
    /// The coupon batches by id: the file's, then those created through the admin API.
    let couponBatches: Mutex<[String: CouponBatchConfig]>
    /// The events with a weekly schedule, whose days `rollSchedules` keeps adding (the file's,
    /// then those created through the admin API).
    let recurring: Mutex<[RecurringEvent]>
    /// The config's time zone: where admin-created schedules run.
    let timeZoneIdentifier: String
    /// What `reload()` runs (the daemon's file reader).
    let reloader = Mutex<ConfigReload?>(nil)
    /// Ids of the coupon batches created through the admin API (a file batch may not take one).
    let adminBatchIDs = Mutex<Set<String>>([])
    /// Ids of the events created through the admin API (a file event may not take one).
    let adminEventIDs = Mutex<Set<String>>([])
    /// The last admin and ops writes (ops `AUDIT`).
    public let audit = AuditTrail()
    /// Ids of events being created through the admin API right now (a second create of one waits for none: 409).
    let creatingEvents = Mutex<Set<String>>([])
    /// The secrets in force (replaced by a reload).
    public let credentials: Credentials
    let nonces: NonceCache
    public let logger: Logger
    /// Admission to the state: closed until `recover` is done and while a failed commit's
    /// rebuild runs (`EngineGate`).
    let gate = EngineGate()

    /// The event loops the shards run on (shard `i` on `loops[i % loops.count]`): every claim,
    /// cancel and payment is decided on one of them.
    public let loops: [any EventLoop]
    /// Which loop `onALoop` runs the next request from outside the loops on.
    let nextLoop = Atomic<Int>(0)
    /// Each loop's queue of answers waiting for the journal, in `loops` order (empty without a journal).
    let durableAnswers: [DurableAnswers]
    /// The mailboxes claims and decisions cross the loops in (SaleEngine+Loops.swift).
    let hops: Hops

    /// An engine for `config`, empty until `recover(from:)` fills it; its shards run on `loops`
    /// (the HTTP server's event loops in the daemon, NIO's shared loops by default), so
    /// requests read there are decided there.
    public init(
        config: SaleConfig, clock: any SaleClock, journal: Journal?, logger: Logger,
        loops: [any EventLoop] = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
    ) {
        precondition(!loops.isEmpty, "the shards need at least one event loop")
        self.catalog = EventCatalog(events: config.events)
        self.inventory = Inventory(
            shardCount: config.shards, sink: journal.map { $0 as any ChangeSink } ?? DiscardingChangeSink(),
            soldOutHints: SoldOutHints(keys: catalog.ledgers.map(\.key)), now: { clock.nowMs() },
            executors: loops.map(\.executor))
        self.loops = loops
        self.durableAnswers = journal.map { journal in loops.map { DurableAnswers(loop: $0, journal: journal) } } ?? []
        // The engine is not built yet: the mailboxes reach it through this box, set below.
        let engineBox = WeakEngine()
        self.hops = Hops(
            loops: loops,
            decide: { owner, batch in
                guard let engine = engineBox.engine else { return }
                Self.decide(batch, owner: owner, hops: engine.hops)
            },
            settle: { origin, batch in
                guard let engine = engineBox.engine else { return }
                for decision in batch { engine.settle(decision.recorded, decision.checked, loop: origin, answer: decision.answer.value) }
            })
        self.journal = journal
        self.reader = journal.map { JournalReader(directory: $0.directory, feed: $0.feed ?? ChangeFeedJSON(clock: clock)) }
        self.outbox = WebhookOutbox(urls: config.feed.receivers.map(\.url))
        self.feedRetentionMs = config.feed.retentionMs
        self.memoryRetentionMs = config.memoryRetentionMs
        self.clock = clock
        self.paymentWindowMs = config.paymentWindowMs
        self.groupWindowMs = config.groupWindowMs
        self.couponBatches = Mutex(Dictionary(config.coupons.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first }))
        self.recurring = Mutex(config.recurring)
        self.timeZoneIdentifier = config.timeZoneIdentifier
        self.credentials = Credentials(config.secrets)
        self.nonces = NonceCache(windowSeconds: EngineLimits.paymentTimestampSkewSecondsMax, capacity: EngineLimits.paymentNoncesMax)
        self.logger = logger
        engineBox.set(self)
    }

    /// Whether the engine serves: recovery is complete and no rebuild after a failed commit runs.
    public var isReady: Bool { gate.isOpen && journal?.isHealthy != false }

    /// Runs `body` admitted by the gate; nil, without running it, while the engine is not
    /// ready (recovering, or rebuilding after a failed commit). Every entry point (HTTP, ops,
    /// the timed sweeps) goes through here, so a rebuild never races a change or shows a
    /// half-built state.
    public func admitted<T: Sendable>(_ body: () async -> T) async -> T? {
        guard enterGate() else { return nil }
        defer { leaveGate() }
        return await body()
    }

    /// What a request refused by the gate is answered.
    public static let notReady = Rejection.unavailable("recovering; retry shortly")

    /// What a change asked for before `recover` has finished gets (ops writes, a checkpoint on
    /// a stop during recovery): the half-rebuilt state must not be changed or checkpointed,
    /// and nothing may commit while recovery reads the journal with several connections.
    static let recovering = Rejection.unavailable("recovering; retry shortly")

    /// Creates the configured ledgers, loads what storage holds, checks every invariant,
    /// and opens the engine for claims.
    public func recover(from state: RecoveredState) async {
        await restore(state)
        gate.open()
        // Schedules (the file's and the admin API's) get their days up to now.
        await rollSchedules()
        logger.info("recovered", metadata: ["orders": "\(state.orders.count)", "checkpoint_seq": "\(state.checkpointSeq)"])
    }

    /// Loads `state` into empty shards and checks every invariant (the gate is closed).
    private func restore(_ state: RecoveredState) async {
        outbox.restore(cursors: state.webhookCursors, parked: state.parkedDeliveries)
        // Events created through the admin API join the file's before any ledger is made
        // (checked against the file by `adminEvents(in:configSource:)` before recovery).
        for stored in state.adminEvents {
            guard let definition = try? SaleConfig.parseAdminEvent(json: stored.body, timeZoneIdentifier: timeZoneIdentifier, nowMs: stored.atMs)
            else { continue }
            catalog.add(definition.events)
            adminEventIDs.withLock { $0.formUnion([definition.id] + definition.events.map(\.id)) }
            if let schedule = definition.recurring {
                recurring.withLock { list in if !list.contains(where: { $0.id == schedule.id }) { list.append(schedule) } }
            }
        }
        // Batches created through the admin API join the file's before any coupon is loaded.
        for stored in state.adminCoupons {
            guard let batch = try? SaleConfig.parseAdminCoupon(json: stored.body, nowMs: stored.atMs) else { continue }
            couponBatches.withLock { batches in if batches[batch.id] == nil { batches[batch.id] = batch } }
            adminBatchIDs.withLock { _ = $0.insert(batch.id) }
        }
        // Admin edits replace the definitions they edited, in order, before the ledgers exist.
        for edit in state.eventEdits {
            guard let definition = try? SaleConfig.parseAdminEvent(json: edit.body, timeZoneIdentifier: timeZoneIdentifier, nowMs: edit.atMs),
                let edited = definition.events.first
            else { continue }
            catalog.replace(edited)
        }
        // Retired events get no ledger (their final counters are known) and their ids stay taken.
        await restoreRetired(state)
        let retired = Set(state.retiredEvents.map(\.event))
        await inventory.addLedgers(catalog.ledgers.filter { !retired.contains($0.key.event) })
        await inventory.setSaleWindows(Dictionary(
            catalog.events.map { ($0.config.id, $0.config.startsAtMs..<max($0.config.startsAtMs, $0.config.endsAtMs)) },
            uniquingKeysWith: { first, _ in first }))
        catalog.resetPaused(to: state.pausedEvents)
        for event in state.pausedEvents { await inventory.setPaused(event, true) }
        var ordersByShard = [[Order]](repeating: [], count: inventory.shards.count)
        for index in ordersByShard.indices { ordersByShard[index].reserveCapacity(state.orders.count / ordersByShard.count + 16) }
        for order in state.orders { ordersByShard[order.id.slot % ordersByShard.count].append(order) }
        var restocksByShard = [[(LedgerKey, Int64)]](repeating: [], count: inventory.shards.count)
        for restock in state.restocks { restocksByShard[restock.0.slot % restocksByShard.count].append(restock) }
        // Groups before their orders: an order attaches to its group as it loads.
        await restoreGroups(state.groups)
        let grown = await inventory.restore(ordersByShard: ordersByShard, restocksByShard: restocksByShard)
        if grown > 0 {
            logger.warning("configured stock is below what orders already hold; totals raised to cover them", metadata: ["units": "\(grown)"])
        }
        await restoreCoupons(state.coupons, orders: state.orders, spent: state.spentCoupons, retiredBatches: state.retiredBatches)
        await inventory.verifyInvariants()
        stats.doublePayments.store(state.doublePayments, ordering: .relaxed)
        idempotency.restore(state.idempotentAnswers, nowMs: clock.nowMs())
        nonces.restore(state.nonces, nowSeconds: clock.nowMs() / 1000)
        var refundsByShard = [[(OrderID, String)]](repeating: [], count: inventory.shards.count)
        for refund in state.refunds { refundsByShard[refund.0.slot % refundsByShard.count].append(refund) }
        for (index, shard) in inventory.shards.enumerated() where !refundsByShard[index].isEmpty {
            await shard.restore(refunds: refundsByShard[index])
        }
    }

    // MARK: Fail-stop

    /// After a failed commit (§3: a 503 changed nothing, now or later): closes the
    /// gate, lets the requests inside finish (their waits fail at once: the journal dropped
    /// their records), waits until a probe write commits, reads back what the database holds
    /// and rebuilds every shard from it, then resumes the journal and reopens the gate.
    /// `/readyz` is 503 meanwhile. Returns early, leaving the gate closed, if the task is
    /// cancelled (shutdown).
    public func rebuildAfterFailedCommit() async {
        guard let journal else { return }
        gate.close()
        logger.error("a journal commit failed: refusing requests while the state is rebuilt from the database")
        await gate.drained()
        var backoffMs = 50
        while true {
            if Task.isCancelled { return }
            do {
                try await journal.probe()
                let state = try Journal.recover(directory: journal.directory)
                await inventory.reset()
                await restore(state)
                journal.resume()
                gate.open()
                logger.notice("state rebuilt from the database; serving again", metadata: ["orders": "\(state.orders.count)"])
                return
            } catch JournalError.closed {
                return
            } catch {
                logger.debug("rebuild waits for the disk", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(backoffMs))
                backoffMs = min(backoffMs * 2, 1_000)
            }
        }
    }

    // MARK: Seckill orders

    /// Creates a seckill order: the contract's checks in the contract's order, then the shard
    /// decides (`placeOrder(_:on:onReserved:answer:)`, run on one of the loops).
    ///
    /// `onReserved` may return one more journal record for the new order (an idempotent
    /// answer); it is journaled with the order as one unit, durable together or not at all.
    public func placeOrder(
        _ request: PlaceOrderRequest, onReserved: (@Sendable (Order) -> JournalRecord?)? = nil
    ) async -> Result<Order, Rejection> {
        await onALoop { loop, answer in _ = self.placeOrder(request, on: loop, onReserved: onReserved, answer: answer) }
    }

    /// `onReserved` as the shard's `attach`: the record it returns goes to the journal with the order.
    static func attachment(_ onReserved: (@Sendable (Order) -> JournalRecord?)?) -> (@Sendable (Order) -> (any Sendable)?)? {
        guard let onReserved else { return nil }
        return { (order: Order) -> (any Sendable)? in onReserved(order) }
    }

    /// A seckill order that passed every check the engine makes before the shard's.
    struct CheckedOrder: Sendable {
        var event: EventCatalog.Event
        var item: ItemConfig
        /// The claim for the owning shard (for an order with a coupon, its amounts are not final).
        var reserve: ReserveRequest
    }

    /// The contract's checks before the shard's, in the contract's order: event, SKU, quantity,
    /// the sale's state; for an order without a coupon also the sold-out flag and the journal.
    ///
    /// A SKU its shard has flagged sold out is answered `sold_out` from the flag, without a
    /// shard call (`SoldOutHints`). Such a claim would also be refused if the buyer were at
    /// `limit_per_user`; both are 409 and the flood this path exists for holds nothing.
    func checkOrder(_ request: PlaceOrderRequest) -> Result<CheckedOrder, Rejection> {
        let nowMs = clock.nowMs()
        guard let (event, state) = catalog.eventAndState(request.event, nowMs: nowMs) else { return .failure(.unknownEvent) }
        guard let item = event.itemsBySKU[request.sku] else { return .failure(.unknownSKU) }
        guard request.qty >= 1 && request.qty <= Int64(item.limitPerUser) else {
            return .failure(.badRequest("qty must be 1..\(item.limitPerUser)"))
        }
        switch state {
        case .scheduled: return .failure(.notStarted(startsAtMs: event.config.startsAtMs))
        case .ended: return .failure(.ended)
        case .paused: return .failure(.paused)
        case .live: break
        }
        let key = LedgerKey(event: event.config.id, sku: item.sku)
        let qty = Int32(request.qty)
        // Not through the sold-out flag with a coupon: coupon_invalid comes before sold_out.
        if request.coupon == nil, inventory.soldOutHints?.isSoldOut(key) == true {
            stats.rejectedSoldOut.increment()
            return .failure(.soldOut)
        }
        if let journal, !journal.acceptsWrites { return .failure(.unavailable(journal.refusalReason)) }
        let reserve = ReserveRequest(
            key: key, user: request.user, qty: qty,
            amountFen: item.priceFen * Int64(qty), discountFen: 0, nowMs: nowMs, expiresAtMs: nowMs + paymentWindowMs)
        return .success(CheckedOrder(event: event, item: item, reserve: reserve))
    }

    /// What a claim the shard did not reserve is answered (counting `sold_out`).
    func refusal(_ result: ReserveResult, event: EventCatalog.Event) -> Rejection {
        switch result {
        case .reserved: preconditionFailure("a reserved claim is not a refusal")
        case .unknownSKU: return .unknownSKU
        case .limitExceeded: return .limitExceeded
        case .saleClosed(let closed): return Self.rejection(closed, event: event)
        case .soldOut:
            stats.rejectedSoldOut.increment()
            return .soldOut
        }
    }

    /// What a claim the owning shard refused on the sale's state is answered.
    static func rejection(_ closed: SaleClosed, event: EventCatalog.Event) -> Rejection {
        switch closed {
        case .paused: .paused
        case .notStarted: .notStarted(startsAtMs: event.config.startsAtMs)
        case .ended: .ended
        }
    }

    /// `user`'s order (nil: unknown, or another user's).
    public func findOrder(_ text: String, user: String) async -> Result<Order?, Rejection> {
        await findOrder(text).map { $0?.user == user ? $0 : nil }
    }

    /// Any order by id (ops; nil: unknown). An order of a retired event is read from storage:
    /// `unavailable` when storage cannot answer now.
    public func findOrder(_ text: String) async -> Result<Order?, Rejection> {
        guard let id = OrderID(text) else { return .success(nil) }
        switch await inventory.lookup(id) {
        case .held(let order): return .success(order)
        case .retired: return await storedOrder(id).map { $0?.order }
        case .unknown: return .success(nil)
        }
    }

    /// Cancels `user`'s pending order (`cancelOrder(_:user:on:answer:)`, run on one of the loops).
    public func cancelOrder(_ text: String, user: String) async -> Result<Order, Rejection> {
        await onALoop { loop, answer in self.cancelOrder(text, user: user, on: loop, answer: answer) }
    }

    /// Cancels `user`'s pending order, on `loop` (one of the engine's): the order's shard
    /// decides, its coupon (if any) goes back to the coupon's shard, and `answer` runs on
    /// `loop` once the cancel is durable.
    public func cancelOrder(_ text: String, user: String, on loop: any EventLoop, answer: @escaping (Result<Order, Rejection>) -> Void) {
        let here = ownLoop(loop)
        guard let id = OrderID(text) else { return answer(.failure(.unknownOrder)) }
        if let journal, !journal.acceptsWrites { return answer(.failure(.unavailable(journal.refusalReason))) }
        let nowMs = clock.nowMs()
        onShard(inventory.shard(for: id), from: here, { $0.cancel(id, user: user, nowMs: nowMs) }) { recorded in
            let reply = {
                self.whenDurable(recorded.ticket, on: here) { failure in
                    if let failure { return answer(.failure(failure)) }
                    switch recorded.result {
                    case .unknownOrder: answer(.failure(.unknownOrder))
                    case .retired: self.cancelRetired(id, user: user, on: here, answer: answer)
                    case .canceled(let order):
                        self.stats.ordersCanceled.increment()
                        answer(.success(order))
                    case .expiredNow(let order):
                        self.stats.ordersExpired.increment()
                        answer(.failure(.orderClosed(order.status)))
                    case .closed(let order): answer(.failure(.orderClosed(order.status)))
                    }
                }
            }
            // The coupon follows the order's state in memory, whether or not the answer can be
            // given: the order is canceled there already, and nothing else would ever free the
            // coupon (a second cancel finds the order closed; the sweep skips it). Safe across a
            // crash: coupon state is derived from the orders at recovery, and a later order that
            // uses the coupon commits after this cancel's record (tickets commit in order).
            switch recorded.result {
            case .canceled(let order), .expiredNow(let order): self.releaseCoupon(of: order, from: here, then: reply)
            case .closed, .unknownOrder, .retired: reply()
            }
        }
    }

    // MARK: Payments

    /// Applies a payment notification (`notifyPayment(timestamp:nonce:signature:body:on:answer:)`,
    /// run on one of the loops).
    public func notifyPayment(
        timestamp: String?, nonce: String?, signature: String?, body: [UInt8]
    ) async -> Result<PaymentAck, Rejection> {
        await onALoop { loop, answer in
            self.notifyPayment(timestamp: timestamp, nonce: nonce, signature: signature, body: body, on: loop, answer: answer)
        }
    }

    /// Applies a payment notification on `loop` (one of the engine's): signature, staleness,
    /// nonce, then the owning shard; `answer` runs on `loop` once the outcome is durable.
    public func notifyPayment(
        timestamp: String?, nonce: String?, signature: String?, body: [UInt8], on loop: any EventLoop,
        answer: @escaping (Result<PaymentAck, Rejection>) -> Void
    ) {
        let here = ownLoop(loop)
        guard let timestamp, let nonce, let signature,
            credentials.payment.isValid(timestamp: timestamp, nonce: nonce, body: body, signatureHex: signature)
        else { return answer(.failure(.badSignature)) }
        let nowMs = clock.nowMs()
        guard let seconds = PaymentSignature.timestampSeconds(timestamp),
            PaymentSignature.isFresh(timestampSeconds: seconds, nowSeconds: nowMs / 1000)
        else { return answer(.failure(.stale)) }
        guard PaymentSignature.isValidNonce(nonce) else {
            return answer(.failure(.badRequest("X-Pay-Nonce must be 1..\(EngineLimits.paymentNonceBytesMax) visible ASCII characters")))
        }
        // Remembered until its own timestamp leaves the window (a future stamp is refused for
        // as long as it could be accepted); held while this notification runs and given back
        // unless it is accepted: a notification answered 503 may be sent again unchanged.
        let nonceUntil = seconds + EngineLimits.paymentTimestampSkewSecondsMax
        guard nonces.reserve(nonce, untilSeconds: nonceUntil, nowSeconds: nowMs / 1000) else { return answer(.failure(.replay)) }
        applyPayment(body: body, nonce: nonce, nonceUntil: nonceUntil, nowMs: nowMs, here: here) { [nonces] result in
            if case .failure = result { nonces.release(nonce, untilSeconds: nonceUntil) }
            answer(result)
        }
    }

    /// A verified notification with its nonce reserved: the owning shard decides, and the
    /// answer waits until the decision and the nonce are durable. The nonce is journaled after
    /// the shard's decision, so its ticket also covers the order's last change: a `duplicate`
    /// or `refund` answer is given only once the payment it reports is on disk.
    private func applyPayment(
        body: [UInt8], nonce: String, nonceUntil: Int64, nowMs: Int64, here: Int,
        answer: @escaping (Result<PaymentAck, Rejection>) -> Void
    ) {
        let notification: (order: String, transaction: String, amountFen: Int64)
        switch PaymentNotification.parse(body) {
        case .success(let parsed): notification = parsed
        case .failure(let rejection): return answer(.failure(rejection))
        }
        guard let id = OrderID(notification.order) else { return answer(.failure(.unknownOrder)) }
        if let journal, !journal.acceptsWrites { return answer(.failure(.unavailable(journal.refusalReason))) }
        let shard = inventory.shard(for: id)
        onShard(shard, from: here, { $0.pay(id, transaction: notification.transaction, amountFen: notification.amountFen, nowMs: nowMs) }) { recorded in
            guard recorded.result != .retired else {
                // Decided against storage, off the loop; answered back on it.
                let loop = self.loops[here]
                let back = NIOLoopBound(answer, eventLoop: loop)
                Task {
                    let decided = await self.payRetired(
                        id, transaction: notification.transaction, amountFen: notification.amountFen, nowMs: nowMs)
                    loop.execute {
                        switch decided {
                        case .success(let recorded):
                            self.answerPayment(
                                recorded, retired: true, nonce: nonce, nonceUntil: nonceUntil, transaction: notification.transaction,
                                here: here, answer: back.value)
                        case .failure(let failure): back.value(.failure(failure))
                        }
                    }
                }
                return
            }
            self.answerPayment(recorded, retired: false, nonce: nonce, nonceUntil: nonceUntil, transaction: notification.transaction, here: here, answer: answer)
        }
    }

    /// Journals the nonce after the payment's decision, then answers once both are durable
    /// (a retired order's coupon stays as it is: its batch counted it when the order closed).
    private func answerPayment(
        _ recorded: Recorded<PaymentResult>, retired: Bool, nonce: String, nonceUntil: Int64, transaction: String, here: Int,
        answer: @escaping (Result<PaymentAck, Rejection>) -> Void
    ) {
        switch recorded.result {
        case .unknownOrder, .retired: return answer(.failure(.unknownOrder))
        case .amountMismatch(let expected): return answer(.failure(.amountMismatch(expectedFen: expected)))
        default: break
        }
        let ticket = journal?.append(.nonce(nonce, untilSeconds: nonceUntil)) ?? 0
        whenDurable(max(ticket, recorded.ticket), on: here) { failure in
            if let failure { return answer(.failure(failure)) }
            if retired { return answer(self.acknowledge(recorded.result, transaction: transaction)) }
            self.settleCoupon(after: recorded.result, from: here) {
                answer(self.acknowledge(recorded.result, transaction: transaction))
            }
        }
    }

    /// A cancel of an order of a retired event: never pending, so closed (or unknown to
    /// another user), read from storage off the loop and answered back on it.
    private func cancelRetired(_ id: OrderID, user: String, on here: Int, answer: @escaping (Result<Order, Rejection>) -> Void) {
        let loop = loops[here]
        let back = NIOLoopBound(answer, eventLoop: loop)
        Task {
            let stored = await self.storedOrder(id)
            loop.execute {
                switch stored {
                case .success(let found?) where found.order.user == user: back.value(.failure(.orderClosed(found.order.status)))
                case .success: back.value(.failure(.unknownOrder))
                case .failure(let failure): back.value(.failure(failure))
                }
            }
        }
    }

    /// What a durable payment decision is answered (and counted).
    private func acknowledge(_ result: PaymentResult, transaction: String) -> Result<PaymentAck, Rejection> {
        switch result {
        case .unknownOrder, .retired: return .failure(.unknownOrder)
        case .amountMismatch(let expected): return .failure(.amountMismatch(expectedFen: expected))
        case .paid(let order):
            stats.ordersPaid.increment()
            return .success(PaymentAck(status: order.status))
        case .duplicate(let order):
            return .success(PaymentAck(status: order.status, duplicate: true))
        case .doublePayment(let order):
            stats.doublePayments.increment()
            logger.warning("double payment: refund", metadata: ["order": "\(order.id)", "transaction": "\(transaction)"])
            return .success(PaymentAck(status: order.status, refundTransaction: transaction))
        case .refundRepeated(let order):
            return .success(PaymentAck(status: order.status, refundTransaction: transaction))
        case .latePaid(let order):
            stats.latePayments.increment()
            stats.ordersPaid.increment()
            return .success(PaymentAck(status: order.status, late: true))
        case .lateRefund(let order):
            stats.latePayments.increment()
            return .success(PaymentAck(status: order.status))
        }
    }

    // MARK: Events

    /// Every item of `event` with its counters, read from the owning shards.
    public func items(of event: EventCatalog.Event) async -> [ItemView] {
        var views: [ItemView] = []
        views.reserveCapacity(event.config.items.count)
        for item in event.config.items {
            let key = LedgerKey(event: event.config.id, sku: item.sku)
            views.append(ItemView(item: item, counters: await counters(key, configuredStock: item.stock)))
        }
        return views
    }

    /// A ledger's counters: from its shard, the final ones of a retired event, or the
    /// configured stock when the ledger does not exist yet.
    public func counters(_ key: LedgerKey, configuredStock: Int64) async -> StockCounters {
        if let counters = await inventory.counters(key) { return counters }
        if let retired = retiredEvent(key.event)?.counters[key] { return retired }
        return StockCounters(total: configuredStock, available: configuredStock, reserved: 0, sold: 0)
    }

    /// Events not yet ended, and those ended in the last 24 h.
    public func listedEvents(nowMs: Int64) -> [EventCatalog.Event] {
        catalog.events.filter { $0.config.endsAtMs > nowMs - 24 * 3_600_000 }
    }

    // MARK: Time-driven and ops changes

    /// Fails every group past its deadline, then expires every pending order past its
    /// deadline and gives its coupon back; returns how many orders expired.
    @discardableResult
    public func expireDue() async -> Int {
        let nowMs = clock.nowMs()
        // Groups first: a member order due with its group is canceled by the group's failure.
        await inventory.failDueGroups(nowMs: nowMs, limitPerShard: EngineLimits.expiryBatchPerShard)
        let expired = await inventory.expireDue(nowMs: nowMs, limitPerShard: EngineLimits.expiryBatchPerShard)
        if !expired.isEmpty { stats.ordersExpired.add(expired.count, ordering: .relaxed) }
        for order in expired { await releaseCoupon(of: order) }
        return expired.count
    }

    /// Pauses or resumes an event; returns once it is durable and every shard has applied it.
    ///
    /// A barrier (§4): the shards check the pause in the same step as the stock, so
    /// once this returns no claim of `event` is decided until the resume. The record is
    /// appended even when the event is already in that state: its ticket comes after the first
    /// one's, so a repeated `PAUSE` answers only once the first is durable too.
    public func setPaused(_ event: String, _ paused: Bool) async -> Result<Void, Rejection> {
        guard isReady else { return .failure(Self.recovering) }
        guard catalog.event(event) != nil else { return .failure(.unknownEvent) }
        if let refusal = retiredRefusal(event) { return .failure(refusal) }
        if let journal, !journal.acceptsWrites { return .failure(.unavailable(journal.refusalReason)) }
        let ticket = journal?.append(.paused(event: event, paused: paused)) ?? 0
        await inventory.setPaused(event, paused)
        catalog.setPaused(event, paused)
        if let failure = await durable(ticket) { return .failure(failure) }
        return .success(())
    }

    /// Adds (or removes) stock of one SKU in one event, durably.
    public func restock(
        event: String, sku: String, delta: Int64, attach: (@Sendable (StockCounters) -> (any Sendable)?)? = nil
    ) async -> Result<StockCounters, Rejection> {
        guard isReady else { return .failure(Self.recovering) }
        guard let found = catalog.event(event) else { return .failure(.unknownEvent) }
        guard found.itemsBySKU[sku] != nil else { return .failure(.unknownSKU) }
        if let refusal = retiredRefusal(event) { return .failure(refusal) }
        guard delta != 0, delta.magnitude <= EngineLimits.restockUnitsMax else {
            return .failure(.badRequest("delta must be a non-zero integer within ±\(EngineLimits.restockUnitsMax)"))
        }
        if let journal, !journal.acceptsWrites { return .failure(.unavailable(journal.refusalReason)) }
        let recorded = await inventory.restock(LedgerKey(event: event, sku: sku), delta: delta, attach: attach.map { attach in
            { @Sendable result in
                guard case .restocked(let counters) = result else { return nil }
                return attach(counters)
            }
        })
        if let failure = await durable(recorded.ticket) { return .failure(failure) }
        switch recorded.result {
        case .restocked(let counters): return .success(counters)
        case .unknownSKU: return .failure(.unknownSKU)
        case .insufficientAvailable(let counters):
            return .failure(.badRequest("cannot remove \(-delta): only \(counters.available) available"))
        }
    }

    /// Writes a checkpoint of every ledger's counters; returns its sequence number.
    public func checkpoint() async -> Result<Int64, Rejection> {
        guard isReady else { return .failure(Self.recovering) }
        guard let journal else { return .success(0) }
        var counters: [(LedgerKey, StockCounters)] = []
        for shard in inventory.shards { counters += await shard.allCounters() }
        do {
            return .success(try await journal.checkpoint(counters: counters, atMs: clock.nowMs()))
        } catch {
            return .failure(.unavailable("\(error)"))
        }
    }

    /// Waits until every change made so far is durable; the rejection to answer if one cannot
    /// be. A read calls it after reading, so that a 2xx never reports a state that is not yet
    /// on disk (§3: every 2xx means durable), e.g. an order paid a moment ago.
    public func settled() async -> Rejection? {
        guard let journal else { return nil }
        return await durable(journal.lastTicket)
    }

    /// Waits until `ticket` is durable; the rejection to answer if it cannot be.
    func durable(_ ticket: UInt64) async -> Rejection? {
        guard ticket != 0, let journal else { return nil }
        do {
            try await journal.waitDurable(ticket)
            return nil
        } catch {
            return .unavailable("\(error)")
        }
    }
}

/// The engine, weakly, for the loop mailboxes made before it exists (set once, at the end of `init`).
final class WeakEngine: Sendable {
    private struct Reference { weak var engine: SaleEngine? }
    private let reference = Mutex(Reference())
    var engine: SaleEngine? { reference.withLock { $0.engine } }
    func set(_ engine: SaleEngine) { reference.withLock { $0.engine = engine } }
}
