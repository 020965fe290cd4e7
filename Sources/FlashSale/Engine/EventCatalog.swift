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

/// The events on sale and which of them ops has paused.
///
/// Events come from the configuration at start, and more are added while the daemon runs
/// (recurring schedules rolling forward); an event, once in, never changes. The paused set
/// changes, and is journaled by the engine. One lock holds both, so the order path's look-up
/// of an event and its state is one lock.
public final class EventCatalog: Sendable {
    /// One event with its items indexed by SKU.
    public struct Event: Sendable {
        /// The configured event.
        public let config: EventConfig
        /// Items by SKU.
        public let itemsBySKU: [String: ItemConfig]

        init(_ config: EventConfig) {
            var items: [String: ItemConfig] = [:]
            for item in config.items { items[item.sku] = item }
            self.config = config
            self.itemsBySKU = items
        }
    }

    private struct State {
        var events: [Event] = []
        var byID: [String: Int] = [:]
        var paused: Set<String>
    }

    private let state: Mutex<State>

    /// A catalog of `events`, with `pausedEvents` paused.
    public init(events: [EventConfig], pausedEvents: Set<String> = []) {
        var state = State(paused: pausedEvents)
        for event in events where state.byID[event.id] == nil {
            state.byID[event.id] = state.events.count
            state.events.append(Event(event))
        }
        self.state = Mutex(state)
    }

    /// Every event, in the order they were added (the configuration's first).
    public var events: [Event] { state.withLock { $0.events } }

    /// The event with `id`.
    public func event(_ id: some StringProtocol) -> Event? {
        let key = String(id)
        return state.withLock { state in state.byID[key].map { state.events[$0] } }
    }

    /// The event with `id` and its state at `nowMs`, in one look.
    public func eventAndState(_ id: some StringProtocol, nowMs: Int64) -> (Event, EventState)? {
        let key = String(id)
        return state.withLock { state in
            state.byID[key].map { index in
                let event = state.events[index]
                return (event, Self.state(of: event, paused: state.paused.contains(key), nowMs: nowMs))
            }
        }
    }

    /// Adds the events whose ids are not in the catalog yet; returns those added.
    @discardableResult
    public func add(_ configs: [EventConfig]) -> [EventConfig] {
        state.withLock { state in
            var added: [EventConfig] = []
            for config in configs where state.byID[config.id] == nil {
                state.byID[config.id] = state.events.count
                state.events.append(Event(config))
                added.append(config)
            }
            return added
        }
    }

    /// Replaces the event with `config.id` (an admin edit); false when there is none.
    @discardableResult
    public func replace(_ config: EventConfig) -> Bool {
        state.withLock { state in
            guard let index = state.byID[config.id] else { return false }
            state.events[index] = Event(config)
            return true
        }
    }

    /// Whether ops paused `id`.
    public func isPaused(_ id: String) -> Bool {
        state.withLock { $0.paused.contains(id) }
    }

    /// Pauses or resumes; returns whether that changed anything.
    @discardableResult
    public func setPaused(_ id: String, _ value: Bool) -> Bool {
        state.withLock { state in
            value ? state.paused.insert(id).inserted : state.paused.remove(id) != nil
        }
    }

    /// Replaces the paused set (recovery, and the rebuild after a failed commit).
    public func resetPaused(to events: Set<String>) {
        state.withLock { $0.paused = events }
    }

    /// The state of `event` at `nowMs`.
    public func state(of event: Event, nowMs: Int64) -> EventState {
        Self.state(of: event, paused: isPaused(event.config.id), nowMs: nowMs)
    }

    private static func state(of event: Event, paused: Bool, nowMs: Int64) -> EventState {
        if nowMs >= event.config.endsAtMs { return .ended }
        if nowMs < event.config.startsAtMs { return .scheduled }
        return paused ? .paused : .live
    }

    /// Every (event, SKU) ledger to create, with its configured stock and limit.
    public var ledgers: [(key: LedgerKey, total: Int64, limitPerUser: Int32)] {
        Self.ledgers(of: events.map(\.config))
    }

    /// The ledgers of `events`.
    public static func ledgers(of events: [EventConfig]) -> [(key: LedgerKey, total: Int64, limitPerUser: Int32)] {
        events.flatMap { event in
            event.items.map { (LedgerKey(event: event.id, sku: $0.sku), $0.stock, $0.limitPerUser) }
        }
    }
}
