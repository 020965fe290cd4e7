import FlashSale
import InventoryActor
import NIOCore

/// The handlers of §4. Every number is read from the owning shard at the time of
/// the command; every change goes through the engine, which journals it.
enum OpsCommands {
    /// The command table of the protocol.
    static let table = OpsCommandTable([
        OpsCommand(name: "PING", arity: 0...0, needsAuth: false, usesEngine: false) { _, _ in OpsOutcome(reply: .ok("PONG")) },
        OpsCommand(name: "STOCK", arity: 1...2, needsAuth: false, run: stock),
        OpsCommand(name: "EVENTS", arity: 0...0, needsAuth: false, run: events),
        OpsCommand(name: "EVENT", arity: 1...1, needsAuth: false, run: event),
        OpsCommand(name: "ORDER", arity: 1...1, needsAuth: false, run: order),
        OpsCommand(name: "STATS", arity: 0...0, needsAuth: false, run: stats),
        OpsCommand(name: "AUTH", arity: 1...1, needsAuth: false, usesEngine: false, run: auth),
        OpsCommand(name: "RESTOCK", arity: 3...3, needsAuth: true, run: restock),
        OpsCommand(name: "PAUSE", arity: 1...1, needsAuth: true) { context, arguments in await setPaused(context, arguments[0], true) },
        OpsCommand(name: "RESUME", arity: 1...1, needsAuth: true) { context, arguments in await setPaused(context, arguments[0], false) },
        OpsCommand(name: "CHECKPOINT", arity: 0...0, needsAuth: true, run: checkpoint),
        OpsCommand(name: "RELOAD", arity: 0...0, needsAuth: true, run: reload),
        OpsCommand(name: "WATCH", arity: 1...2, needsAuth: false, run: watch),
        OpsCommand(name: "OUTBOX", arity: 0...0, needsAuth: false, run: outbox),
        OpsCommand(name: "AUDIT", arity: 0...1, needsAuth: false, usesEngine: false, run: audit),
        OpsCommand(name: "QUIT", arity: 0...0, needsAuth: false, usesEngine: false) { _, _ in OpsOutcome(reply: .ok("bye"), effect: .close) },
    ])

    /// Whether an event in `state` counts toward `STOCK <sku>` with no event: on sale by the
    /// clock, whether or not ops paused it (a pause holds the stock, it does not remove it).
    static func countsAsLive(_ state: EventState) -> Bool { state == .live || state == .paused }

    private static let zero = StockCounters(total: 0, available: 0, reserved: 0, sold: 0)

    private static func error(_ code: String, _ text: String) -> OpsOutcome {
        OpsOutcome(reply: .error(code: code, text: text))
    }

    // MARK: Reads

    static func stock(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        let engine = context.engine
        let sku = arguments[0]
        if arguments.count == 2 {
            guard let event = engine.catalog.event(arguments[1]) else { return error("unknown_event", "no event '\(arguments[1])'") }
            guard let item = event.itemsBySKU[sku] else { return error("unknown_sku", "no SKU '\(sku)' in event '\(event.config.id)'") }
            let counters = await counters(engine, event, item)
            return OpsOutcome(reply: .ok(OpsReply.stock(sku: sku, counters)))
        }
        let events = engine.catalog.events.filter { $0.itemsBySKU[sku] != nil }
        guard !events.isEmpty else { return error("unknown_sku", "no SKU '\(sku)' in any event") }
        let nowMs = engine.clock.nowMs()
        var sum = zero
        for event in events where countsAsLive(engine.catalog.state(of: event, nowMs: nowMs)) {
            let counters = await counters(engine, event, event.itemsBySKU[sku]!)
            sum.total += counters.total
            sum.available += counters.available
            sum.reserved += counters.reserved
            sum.sold += counters.sold
        }
        return OpsOutcome(reply: .ok(OpsReply.stock(sku: sku, sum)))
    }

    /// An item's counters from its shard; the configured stock if the ledger does not exist
    /// yet (as `GET /v1/events/{id}` shows it).
    private static func counters(_ engine: SaleEngine, _ event: EventCatalog.Event, _ item: ItemConfig) async -> StockCounters {
        await engine.counters(LedgerKey(event: event.config.id, sku: item.sku), configuredStock: item.stock)
    }

    static func events(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        let engine = context.engine
        let nowMs = engine.clock.nowMs()
        let lines = engine.catalog.events.map { event in
            "event id=\(event.config.id) kind=\(event.config.kind.rawValue) state=\(engine.catalog.state(of: event, nowMs: nowMs).rawValue) "
                + "starts_at=\(rfc3339(ms: event.config.startsAtMs)) ends_at=\(rfc3339(ms: event.config.endsAtMs))"
        }
        return OpsOutcome(reply: .list(lines))
    }

    static func event(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        let engine = context.engine
        guard let event = engine.catalog.event(arguments[0]) else { return error("unknown_event", "no event '\(arguments[0])'") }
        let items = await engine.items(of: event)
        let state = engine.catalog.state(of: event, nowMs: engine.clock.nowMs())
        let formed = await engine.groupsFormed(event)
        var lines = ["event id=\(event.config.id) kind=\(event.config.kind.rawValue) state=\(state.rawValue) groups_formed=\(formed)"]
        for view in items { lines.append("item " + OpsReply.stock(sku: view.item.sku, view.counters)) }
        return OpsOutcome(reply: .list(lines))
    }

    static func order(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        let found: Order?
        switch await context.engine.findOrder(arguments[0]) {
        case .success(let order): found = order
        case .failure(let failure): return OpsOutcome(reply: OpsReply(failure))
        }
        guard let order = found else { return error("unknown_order", "no order '\(arguments[0])'") }
        if let failure = await context.engine.settled() { return OpsOutcome(reply: OpsReply(failure)) }
        return OpsOutcome(reply: .ok(OpsReply.order(order)))
    }

    static func stats(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        var stats = context.engine.stats.snapshot
        // Formed groups are counted by the shards that own them (they survive restarts).
        stats.append(("groups_formed", await context.engine.groupsFormedTotal()))
        stats.append(("checkpoint_seq", Int(context.engine.journal?.checkpointSeq ?? 0)))
        return OpsOutcome(reply: .list(stats.map { "stat \($0.0)=\($0.1)" }))
    }

    /// `OUTBOX`: each receiver's progress, then the parked deliveries (§4).
    static func outbox(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        let engine = context.engine
        var lines: [String] = []
        for receiver in engine.outbox.snapshot {
            var pending = 0
            if case .success(let count) = await engine.changesPending(after: receiver.deliveredThrough) { pending = count }
            lines.append(
                "webhook url=\(OpsReply.word(receiver.url)) delivered_through=\(receiver.deliveredThrough) pending=\(pending) "
                    + "parked=\(receiver.parked) last_error=\(receiver.lastError.isEmpty ? "none" : OpsReply.word(receiver.lastError))")
        }
        for parked in engine.outbox.parked {
            lines.append("parked id=\(parked.changeID) type=\(parked.type) url=\(OpsReply.word(parked.url)) attempts=\(parked.attempts)")
        }
        return OpsOutcome(reply: .list(lines))
    }

    /// `AUDIT [n]`: the newest n (default 20, at most `AuditTrail.capacity`) admin and ops writes, oldest first.
    static func audit(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        var count = 20
        if let text = arguments.first {
            guard let parsed = Int(text), (1...AuditTrail.capacity).contains(parsed) else {
                return error("bad_arguments", "AUDIT [n]: n is 1..\(AuditTrail.capacity)")
            }
            count = parsed
        }
        let lines = context.engine.audit.last(count).map { entry in
            "audit at=\(rfc3339(ms: entry.atMs)) door=\(entry.door) peer=\(OpsReply.word(entry.peer)) "
                + "what=\(OpsReply.word(entry.what)) result=\(OpsReply.word(entry.result))"
        }
        return OpsOutcome(reply: .list(lines))
    }

    /// `RELOAD`: re-reads the config file and applies it, or refuses it whole.
    static func reload(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        switch await context.engine.reload() {
        case .success(let summary): return OpsOutcome(reply: .ok(summary))
        case .failure(let error): return self.error("config_error", error.description)
        }
    }

    // MARK: Auth

    static func auth(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        let candidate = arguments[0]
        let matches: Bool
        if let fixed = context.opsSecret {
            matches = isOpsSecret(candidate, secret: fixed)
        } else {
            matches = context.engine.credentials.ops.matches(candidate)
        }
        guard matches else {
            return OpsOutcome(reply: .error(code: "auth_failed", text: "wrong token"), effect: .authFailed)
        }
        return OpsOutcome(reply: .ok(), effect: .authenticated)
    }

    /// Compares in constant time (`SharedSecret`).
    static func isOpsSecret(_ candidate: String, secret: String) -> Bool {
        SharedSecret(secret).matches(candidate)
    }

    // MARK: Writes (after AUTH)

    static func restock(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        let (sku, event) = (arguments[0], arguments[1])
        guard let delta = Int64(arguments[2]) else { return error("bad_arguments", "delta must be an integer, got '\(arguments[2].prefix(32))'") }
        switch await context.engine.restock(event: event, sku: sku, delta: delta) {
        case .success(let counters): return OpsOutcome(reply: .ok(OpsReply.stock(sku: sku, counters) + " event=\(event)"))
        case .failure(let rejection): return OpsOutcome(reply: OpsReply(rejection))
        }
    }

    static func setPaused(_ context: OpsContext, _ eventID: String, _ paused: Bool) async -> OpsOutcome {
        let engine = context.engine
        switch await engine.setPaused(eventID, paused) {
        case .failure(let rejection): return OpsOutcome(reply: OpsReply(rejection))
        case .success:
            let state = engine.catalog.event(eventID).map { engine.catalog.state(of: $0, nowMs: engine.clock.nowMs()).rawValue } ?? "unknown"
            return OpsOutcome(reply: .ok("event=\(eventID) paused=\(paused) state=\(state)"))
        }
    }

    static func checkpoint(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        switch await context.engine.checkpoint() {
        case .success(let seq): return OpsOutcome(reply: .ok("checkpoint_seq=\(seq)"))
        case .failure(let rejection): return OpsOutcome(reply: OpsReply(rejection))
        }
    }

    // MARK: Watch

    static func watch(_ context: OpsContext, _ arguments: [String]) async -> OpsOutcome {
        let engine = context.engine
        let sku = arguments[0]
        let events: [EventCatalog.Event]
        if arguments.count == 2 {
            guard let event = engine.catalog.event(arguments[1]) else { return error("unknown_event", "no event '\(arguments[1])'") }
            guard event.itemsBySKU[sku] != nil else { return error("unknown_sku", "no SKU '\(sku)' in event '\(event.config.id)'") }
            events = [event]
        } else {
            events = engine.catalog.events.filter { $0.itemsBySKU[sku] != nil }
            guard !events.isEmpty else { return error("unknown_sku", "no SKU '\(sku)' in any event") }
        }
        let channel = context.channel
        let subscription = WatchSubscription(
            sku: sku, event: arguments.count == 2 ? events[0].config.id : nil, catalog: engine.catalog, clock: engine.clock,
            eventLoop: channel.eventLoop,
            canDeliver: { channel.isWritable },
            deliver: { line in channel.writeAndFlush(OpsReply.push(line).buffer(channel.allocator), promise: nil) })
        // Register first, then read: a change in between reaches the subscription and wins.
        context.watchHub.add(subscription)
        for event in events {
            subscription.seed(event: event.config.id, await counters(engine, event, event.itemsBySKU[sku]!))
        }
        return OpsOutcome(reply: .ok(), effect: .watch(subscription))
    }
}
