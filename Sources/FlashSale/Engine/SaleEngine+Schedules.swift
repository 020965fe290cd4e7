// Recurring schedules that never run dry (§5): the config holds a schedule's days
// within its horizon of the load time; while the daemon runs, `rollSchedules` adds each next
// day as it comes within the horizon, so a daemon up for months still has next Wednesday's
// sale. A day is made from its local date and time in the schedule's time zone, so daylight
// saving moves its UTC start, never its local one. A day whose window has passed is never
// added: a daemon started after a sale window lists it as ended (for 24 h) and takes no order.

import InventoryActor

extension SaleEngine {
    /// How often the daemon rolls its schedules forward, ms: far below a day, so a new day is
    /// always in the catalog long before it starts.
    public static let scheduleRollIntervalMs: Int64 = 60_000

    /// Adds every recurring event's days that are now within its horizon and not yet in the
    /// catalog; returns those added.
    @discardableResult
    public func rollSchedules() async -> [EventConfig] {
        let nowMs = clock.nowMs()
        let due = recurring.withLock { $0 }.flatMap { $0.events(nowMs: nowMs) }.filter { $0.endsAtMs > nowMs }
        return await addEvents(due, by: "schedule")
    }

    /// Adds `events` whose ids are not in the catalog: their sale windows on every shard, then
    /// their ledgers, then the catalog entry that makes them visible, in that order, so no claim
    /// ever reaches a ledger without its window. Returns the events added.
    @discardableResult
    public func addEvents(_ events: [EventConfig], by source: String) async -> [EventConfig] {
        let new = events.filter { catalog.event($0.id) == nil }
        guard !new.isEmpty else { return [] }
        await inventory.addSaleWindows(Dictionary(
            new.map { ($0.id, $0.startsAtMs..<max($0.startsAtMs, $0.endsAtMs)) }, uniquingKeysWith: { first, _ in first }))
        await inventory.addLedgers(EventCatalog.ledgers(of: new))
        let added = catalog.add(new)
        if !added.isEmpty {
            logger.info(
                "events added", metadata: ["events": "\(added.map(\.id).joined(separator: ","))", "by": "\(source)"])
        }
        return added
    }
}
