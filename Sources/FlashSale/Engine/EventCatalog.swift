import InventoryActor
import Synchronization

/// Where an event stands at an instant.
public enum EventState: String, Sendable {
    /// Not started yet.
    case scheduled
    /// On sale.
    case live
    /// Live by the clock, but held by ops (`PAUSE`).
    case paused
    /// Over.
    case ended
}

/// The events on sale (from the configuration) and which of them ops has paused.
///
/// Events and items never change while the daemon runs; the paused set does, and is
/// journaled by the engine.
public final class EventCatalog: Sendable {
    /// One event with its items indexed by SKU.
    public struct Event: Sendable {
        /// The configured event.
        public let config: EventConfig
        /// Items by SKU.
        public let itemsBySKU: [String: ItemConfig]
    }

    /// Events in configuration order.
    public let events: [Event]
    private let byID: [String: Int]
    private let paused: Mutex<Set<String>>

    /// A catalog of `events`, with `pausedEvents` paused.
    public init(events: [EventConfig], pausedEvents: Set<String> = []) {
        var list: [Event] = []
        var byID: [String: Int] = [:]
        for event in events {
            var items: [String: ItemConfig] = [:]
            for item in event.items { items[item.sku] = item }
            byID[event.id] = list.count
            list.append(Event(config: event, itemsBySKU: items))
        }
        self.events = list
        self.byID = byID
        self.paused = Mutex(pausedEvents)
    }

    /// The event with `id`.
    public func event(_ id: some StringProtocol) -> Event? {
        byID[String(id)].map { events[$0] }
    }

    /// Whether ops paused `id`.
    public func isPaused(_ id: String) -> Bool {
        paused.withLock { $0.contains(id) }
    }

    /// Pauses or resumes; returns whether that changed anything.
    @discardableResult
    public func setPaused(_ id: String, _ value: Bool) -> Bool {
        paused.withLock { set in
            value ? set.insert(id).inserted : set.remove(id) != nil
        }
    }

    /// Replaces the paused set (recovery, and the rebuild after a failed commit).
    public func resetPaused(to events: Set<String>) {
        paused.withLock { $0 = events }
    }

    /// The state of `event` at `nowMs`.
    public func state(of event: Event, nowMs: Int64) -> EventState {
        if nowMs >= event.config.endsAtMs { return .ended }
        if nowMs < event.config.startsAtMs { return .scheduled }
        return isPaused(event.config.id) ? .paused : .live
    }

    /// Every (event, SKU) ledger to create, with its configured stock and limit.
    public var ledgers: [(key: LedgerKey, total: Int64, limitPerUser: Int32)] {
        events.flatMap { event in
            event.config.items.map { (LedgerKey(event: event.config.id, sku: $0.sku), $0.stock, $0.limitPerUser) }
        }
    }
}
