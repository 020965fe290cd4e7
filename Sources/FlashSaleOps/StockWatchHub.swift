import FlashSale
import InventoryActor
import NIOCore
import Synchronization

/// Routes each shard change to the `WATCH` subscriptions of its SKU.
///
/// It is the shards' `StockObserver`: called inside the owning actor right after a change, it
/// only stores the new counters in each subscription's latest-state slot and, when no flush is
/// due yet, schedules one on the subscription's event loop. Nothing polls; nothing blocks.
public final class StockWatchHub: StockObserver {
    private let subscriptions = Mutex<[String: [ObjectIdentifier: WatchSubscription]]>([:])
    /// Subscriptions registered: lets the claim path skip the lock when nobody watches.
    private let count = Atomic<Int>(0)

    /// A hub with no subscriptions.
    public init() {}

    /// Hands `counters` to every subscription watching `key.sku`.
    public func stockChanged(_ key: LedgerKey, _ counters: StockCounters, by change: InventoryChange) {
        guard count.load(ordering: .relaxed) > 0 else { return }
        guard let watching = subscriptions.withLock({ $0[key.sku].map { Array($0.values) } }) else { return }
        for subscription in watching { subscription.changed(event: key.event, counters) }
    }

    /// Subscriptions registered now (the fuzz target tells a watching session from a stuck one).
    @_spi(Fuzzing) public var subscriptionCount: Int { count.load(ordering: .relaxed) }

    /// Starts routing changes to `subscription`.
    func add(_ subscription: WatchSubscription) {
        subscriptions.withLock { $0[subscription.sku, default: [:]][ObjectIdentifier(subscription)] = subscription }
        count.add(1, ordering: .relaxed)
    }

    /// Stops routing changes to `subscription` (idempotent).
    func remove(_ subscription: WatchSubscription) {
        let removed = subscriptions.withLock { table -> Bool in
            guard table[subscription.sku]?.removeValue(forKey: ObjectIdentifier(subscription)) != nil else { return false }
            if table[subscription.sku]?.isEmpty == true { table[subscription.sku] = nil }
            return true
        }
        if removed { count.subtract(1, ordering: .relaxed) }
    }
}

/// One connection's `WATCH <sku> [<event>]`: the latest counters per event, and at most one
/// pending flush, so at most `OpsLimits.watchLinesPerSecondMax` lines go out per second and
/// the last state always does.
final class WatchSubscription: Sendable {
    /// The watched SKU.
    let sku: String
    /// The watched event; nil: summed over the events live (or paused) at the time of the line.
    let event: String?
    private let catalog: EventCatalog
    private let clock: any SaleClock
    private let eventLoop: any EventLoop
    private let deliver: @Sendable (String) -> Void
    /// Whether the connection takes a line now; while it does not, changes coalesce into the
    /// latest state, sent once it does (a stalled client costs one state, not a queue).
    private let canDeliver: @Sendable () -> Bool
    private let state = Mutex(State())

    private struct State {
        var latest: [String: StockCounters] = [:]
        var started = false
        var cancelled = false
        var dirty = false
        var flushScheduled = false
        var lastSentAt = NIODeadline.distantPast
        var lastLine: String?
    }

    /// A subscription whose lines `deliver` writes; `deliver` runs on `eventLoop`.
    init(
        sku: String, event: String?, catalog: EventCatalog, clock: any SaleClock, eventLoop: any EventLoop,
        canDeliver: @escaping @Sendable () -> Bool = { true }, deliver: @escaping @Sendable (String) -> Void
    ) {
        self.canDeliver = canDeliver
        self.sku = sku
        self.event = event
        self.catalog = catalog
        self.clock = clock
        self.eventLoop = eventLoop
        self.deliver = deliver
    }

    /// A change from a shard (any thread): keep the newest counters, schedule a flush if none is due.
    func changed(event changedEvent: String, _ counters: StockCounters) {
        if let event, event != changedEvent { return }
        let delay = state.withLock { state -> TimeAmount? in
            guard !state.cancelled else { return nil }
            state.latest[changedEvent] = counters
            state.dirty = true
            guard state.started, !state.flushScheduled else { return nil }
            state.flushScheduled = true
            let due = state.lastSentAt + .milliseconds(OpsLimits.watchIntervalMs)
            return max(.zero, due - eventLoop.now)
        }
        if let delay { eventLoop.scheduleTask(in: delay) { self.flush() } }
    }

    /// The counters read from the owning shard when the watch began; a change that arrived
    /// since registration is at least as new, so it wins.
    func seed(event seededEvent: String, _ counters: StockCounters) {
        state.withLock { state in
            if state.latest[seededEvent] == nil { state.latest[seededEvent] = counters }
        }
    }

    /// Sends the current state now and every change from here on (on the event loop, after `OK`).
    func start() {
        eventLoop.preconditionInEventLoop()
        state.withLock { state in
            state.started = true
            state.dirty = true
            state.flushScheduled = true
        }
        flush()
    }

    /// Stops every later line.
    func cancel() {
        state.withLock { $0.cancelled = true }
    }

    private func flush() {
        guard canDeliver() else {
            // Not now: keep the latest state (dirty) and look again after one interval.
            let retry = state.withLock { state -> Bool in
                guard !state.cancelled else { return false }
                state.flushScheduled = true
                return true
            }
            if retry { eventLoop.scheduleTask(in: .milliseconds(OpsLimits.watchIntervalMs)) { self.flush() } }
            return
        }
        let nowMs = clock.nowMs()
        let line = state.withLock { state -> String? in
            state.flushScheduled = false
            guard state.dirty, !state.cancelled else { return nil }
            state.dirty = false
            state.lastSentAt = eventLoop.now
            let line = OpsReply.watchLine(sku: sku, sum(state.latest, nowMs: nowMs))
            guard line != state.lastLine else { return nil }
            state.lastLine = line
            return line
        }
        if let line { deliver(line) }
    }

    private func sum(_ latest: [String: StockCounters], nowMs: Int64) -> StockCounters {
        var total = StockCounters(total: 0, available: 0, reserved: 0, sold: 0)
        for (eventID, counters) in latest {
            if event == nil {
                guard let found = catalog.event(eventID), OpsCommands.countsAsLive(catalog.state(of: found, nowMs: nowMs)) else { continue }
            }
            total.total += counters.total
            total.available += counters.available
            total.reserved += counters.reserved
            total.sold += counters.sold
        }
        return total
    }
}
