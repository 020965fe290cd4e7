// Events created through the admin API (contract §7): checked by the config file's own rules,
// journaled, answered only once durable, in the catalog at once, and back after a restart.

import FlashSaleJournal
import InventoryActor

extension SaleEngine {
    /// An event an admin request would create, checked: its definition, or why not.
    public func checkNewEvent(json body: [UInt8]) -> Result<AdminEventDefinition, Rejection> {
        do throws(ConfigError) {
            let definition = try SaleConfig.parseAdminEvent(json: body, timeZoneIdentifier: timeZoneIdentifier, nowMs: clock.nowMs())
            return .success(definition)
        } catch {
            return .failure(.badRequest(error.key.isEmpty ? error.problem : "\(error.key): \(error.problem)"))
        }
    }

    /// Creates the event `definition` (from `checkNewEvent`) defined by `body`: journaled with
    /// `answer` (the idempotent answer's record, if any) as one unit, then added to the catalog
    /// and the shards. `409 conflict` when its id, or one of its days', is taken.
    public func createEvent(
        _ definition: AdminEventDefinition, body: [UInt8], answer: JournalRecord?
    ) async -> Result<[EventConfig], Rejection> {
        guard isReady else { return .failure(Self.recovering) }
        let ids = Set([definition.id] + definition.events.map(\.id))
        let taken = ids.first { catalog.event($0) != nil }
            ?? recurring.withLock { list in list.first { ids.contains($0.id) }?.id }
        if let taken { return .failure(.conflict("an event with id '\(taken)' exists")) }
        let reserved = creatingEvents.withLock { creating in
            guard creating.isDisjoint(with: ids) else { return false }
            creating.formUnion(ids)
            return true
        }
        guard reserved else { return .failure(.conflict("an event with id '\(definition.id)' is being created")) }
        defer { _ = creatingEvents.withLock { $0.subtract(ids) } }
        if let journal, !journal.acceptsWrites { return .failure(.unavailable(journal.refusalReason)) }
        let records: [JournalRecord] = [.adminEvent(id: definition.id, body: body, atMs: clock.nowMs())] + (answer.map { [$0] } ?? [])
        let ticket = journal?.append(contentsOf: records) ?? 0
        if let failure = await durable(ticket) { return .failure(failure) }
        await adopt(definition)
        return .success(definition.events)
    }

    /// Puts an admin-created event's days into the catalog and its schedule with the others.
    func adopt(_ definition: AdminEventDefinition) async {
        adminEventIDs.withLock { $0.formUnion([definition.id] + definition.events.map(\.id)) }
        if let recurring = definition.recurring { self.recurring.withLock { $0.append(recurring) } }
        await addEvents(definition.events, by: "admin")
    }

    /// The admin-created events of `state`, checked again as they were created (their time
    /// taken as now); the first whose id the config file also has, named as the file's error.
    public func adminEvents(in state: RecoveredState, configSource: String) -> Result<[AdminEventDefinition], ConfigError> {
        var definitions: [AdminEventDefinition] = []
        let fileIDs = Set(catalog.events.map(\.config.id)).union(recurring.withLock { $0.map(\.id) })
        for stored in state.adminEvents {
            let definition: AdminEventDefinition
            do throws(ConfigError) {
                definition = try SaleConfig.parseAdminEvent(json: stored.body, timeZoneIdentifier: timeZoneIdentifier, nowMs: stored.atMs)
            } catch {
                return .failure(ConfigError(
                    source: configSource, key: "events",
                    problem: "the event '\(stored.id)' created through the admin API no longer passes the rules: \(error.problem)"))
            }
            if let clash = ([definition.id] + definition.events.map(\.id)).first(where: fileIDs.contains) {
                return .failure(ConfigError(
                    source: configSource, key: "events",
                    problem: "id '\(clash)' is also an event created through the admin API at \(rfc3339(ms: stored.atMs)); "
                        + "remove it from this file or give it another id"))
            }
            definitions.append(definition)
        }
        return .success(definitions)
    }
}
