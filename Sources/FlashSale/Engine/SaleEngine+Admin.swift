// Events created through the admin API (§7): checked by the config file's own rules,
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
        // The file's bound holds for the API too, on what memory holds of events: a retired
        // event keeps only its definition and counters, so months of sales do not use it up.
        let retired = retirement.withLock { $0.retired.count }
        guard catalog.events.count - retired + definition.events.count <= ConfigLimits.eventsMax else {
            return .failure(.badRequest("at most \(ConfigLimits.eventsMax) events in all, retired ones aside: this one would pass it"))
        }
        let reserved = creatingEvents.withLock { creating in
            guard creating.isDisjoint(with: ids) else { return false }
            creating.formUnion(ids)
            return true
        }
        guard reserved else { return .failure(.conflict("an event with id '\(definition.id)' is being created")) }
        defer { creatingEvents.withLock { $0.subtract(ids) } }
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
        let fileBatches = couponBatches.withLock { Set($0.keys) }
        for stored in state.adminCoupons where fileBatches.contains(stored.id) {
            return .failure(ConfigError(
                source: configSource, key: "coupons",
                problem: "id '\(stored.id)' is also a coupon batch created through the admin API at \(rfc3339(ms: stored.atMs)); "
                    + "remove it from this file or give it another id"))
        }
        return .success(definitions)
    }
}

// MARK: Edits

extension SaleEngine {
    /// What an edit may name in `items[]`, besides `sku`.
    static let editableItemKeys: Set<String> = ["name", "price", "group_price", "limit_per_user"]
    /// What an edit may name at the top.
    static let editableEventKeys: Set<String> = ["starts_at", "ends_at", "items"]

    /// The `events[]` entry of `event`, as JSON with absolute times: the form an edit is checked in.
    static func entry(_ event: EventConfig, patch: [String: JSONValue] = [:], itemPatches: [String: [String: JSONValue]] = [:]) -> [UInt8] {
        JSONWriter.object { json in
            json.field("id", event.id)
            json.field("kind", event.kind.rawValue)
            // Milliseconds kept: an edit that does not name a time leaves it exactly as it was.
            if let startsAt = patch["starts_at"] {
                json.field("starts_at", startsAt)
            } else {
                json.field("starts_at", rfc3339Milliseconds(ms: event.startsAtMs))
            }
            if let endsAt = patch["ends_at"] { json.field("ends_at", endsAt) } else { json.field("ends_at", rfc3339Milliseconds(ms: event.endsAtMs)) }
            json.array("items") { json in
                for item in event.items {
                    let edits = itemPatches[item.sku] ?? [:]
                    json.object { json in
                        json.field("sku", item.sku)
                        if let name = edits["name"] { json.field("name", name) } else { json.field("name", item.name) }
                        if let price = edits["price"] { json.field("price", price) } else { json.field("price", item.priceFen) }
                        json.field("stock", item.stock)
                        if let limit = edits["limit_per_user"] { json.field("limit_per_user", limit) } else { json.field("limit_per_user", Int(item.limitPerUser)) }
                        if let size = item.groupSize { json.field("group_size", size) }
                        if let groupPrice = edits["group_price"] {
                            json.field("group_price", groupPrice)
                        } else if let groupPrice = item.groupPriceFen {
                            json.field("group_price", groupPrice)
                        }
                    }
                }
            }
        }
    }

    /// An edit of event `id` by `body` (`PATCH /v1/admin/events/{event}`), checked: the event
    /// after it and its definition as JSON, or why not. Names and `ends_at` change any time;
    /// `starts_at`, prices and `limit_per_user` only before the start. The result is checked
    /// by the config file's rules.
    public func checkEventEdit(id: String, json body: [UInt8]) -> Result<(edited: EventConfig, base: EventConfig, entry: [UInt8]), Rejection> {
        guard let current = catalog.event(id)?.config else { return .failure(.unknownEvent) }
        if let refusal = retiredRefusal(id) { return .failure(refusal) }
        guard case .object(let patch)? = try? JSONParser.parse(body) else {
            return .failure(.badRequest("body is not a JSON object: send the fields to change"))
        }
        if let key = patch.keys.sorted().first(where: { !Self.editableEventKeys.contains($0) }) {
            return .failure(.badRequest("\(key): cannot be changed; an edit names starts_at, ends_at and items[].name, price, group_price, limit_per_user"))
        }
        var itemPatches: [String: [String: JSONValue]] = [:]
        if let items = patch["items"] {
            guard case .array(let list) = items else { return .failure(.badRequest("items: expected a list of {sku, ...}")) }
            for (index, element) in list.enumerated() {
                guard case .object(let fields) = element, case .string(let sku)? = fields["sku"] else {
                    return .failure(.badRequest("items[\(index)]: expected an object naming its sku"))
                }
                guard current.items.contains(where: { $0.sku == sku }) else {
                    return .failure(.badRequest("items[\(index)].sku: no item '\(sku)' in this event"))
                }
                if let key = fields.keys.sorted().first(where: { $0 != "sku" && !Self.editableItemKeys.contains($0) }) {
                    return .failure(.badRequest("items[\(index)].\(key): cannot be changed\(key == "stock" ? " (restock instead)" : "")"))
                }
                itemPatches[sku, default: [:]].merge(fields.filter { $0.key != "sku" }) { _, new in new }
            }
        }
        let entry = Self.entry(current, patch: patch, itemPatches: itemPatches)
        let nowMs = clock.nowMs()
        let edited: EventConfig
        switch checkNewEvent(json: entry) {
        case .failure(let rejection): return .failure(rejection)
        case .success(let definition):
            guard let event = definition.events.first else { return .failure(.badRequest("the edit leaves no sale window")) }
            edited = event
        }
        if nowMs >= current.startsAtMs {
            let started = "the sale has started: only names and ends_at change now"
            if edited.startsAtMs != current.startsAtMs { return .failure(.badRequest("starts_at: \(started)")) }
            for (index, item) in edited.items.enumerated() {
                let before = current.items[index]
                if item.priceFen != before.priceFen { return .failure(.badRequest("items[\(index)].price: \(started)")) }
                if item.groupPriceFen != before.groupPriceFen { return .failure(.badRequest("items[\(index)].group_price: \(started)")) }
                if item.limitPerUser != before.limitPerUser { return .failure(.badRequest("items[\(index)].limit_per_user: \(started)")) }
            }
        }
        return .success((edited, current, entry))
    }

    /// Applies a checked edit: journaled (with `answer`, the idempotent answer's record) as one
    /// unit, then in the catalog, the shards' sale window and per-buyer limits.
    /// `base` is the event the edit was checked against: if another edit has changed it since
    /// (the check and this call are apart by the awaits of rendering the answer), this one is
    /// refused rather than undoing the other.
    public func editEvent(
        _ edited: EventConfig, from base: EventConfig, entry: [UInt8], answer: JournalRecord?
    ) async -> Result<EventConfig, Rejection> {
        guard isReady else { return .failure(Self.recovering) }
        let reserved = creatingEvents.withLock { $0.insert(edited.id).inserted }
        guard reserved else { return .failure(.conflict("the event '\(edited.id)' is being created or edited")) }
        defer { creatingEvents.withLock { _ = $0.remove(edited.id) } }
        if let refusal = retiredRefusal(edited.id) { return .failure(refusal) }
        guard catalog.event(edited.id)?.config == base else {
            return .failure(.conflict("the event '\(edited.id)' was changed meanwhile: read it and send the edit again"))
        }
        if let journal, !journal.acceptsWrites { return .failure(.unavailable(journal.refusalReason)) }
        let records: [JournalRecord] = [.adminEventEdit(id: edited.id, body: entry, atMs: clock.nowMs())] + (answer.map { [$0] } ?? [])
        let ticket = journal?.append(contentsOf: records) ?? 0
        if let failure = await durable(ticket) { return .failure(failure) }
        await apply(edit: edited)
        return .success(edited)
    }

    /// Puts an edited event in force: the catalog, the sale window on every shard, the limits.
    func apply(edit edited: EventConfig) async {
        catalog.replace(edited)
        await inventory.edit(
            event: edited.id, window: edited.startsAtMs..<max(edited.startsAtMs, edited.endsAtMs),
            limits: edited.items.map { (LedgerKey(event: edited.id, sku: $0.sku), $0.limitPerUser) })
    }
}

// MARK: Coupon batches

extension SaleEngine {
    /// A batch an admin request would create, checked by the file's rules: the batch, or why not.
    public func checkNewCouponBatch(json body: [UInt8]) -> Result<CouponBatchConfig, Rejection> {
        do throws(ConfigError) {
            return .success(try SaleConfig.parseAdminCoupon(json: body, nowMs: clock.nowMs()))
        } catch {
            return .failure(.badRequest(error.key.isEmpty ? error.problem : "\(error.key): \(error.problem)"))
        }
    }

    /// Creates `batch` (from `checkNewCouponBatch`) defined by `body`: journaled with `answer`
    /// as one unit, then claimable at once. `409 conflict` when its id is taken.
    public func createCouponBatch(_ batch: CouponBatchConfig, body: [UInt8], answer: JournalRecord?) async -> Result<CouponBatchConfig, Rejection> {
        guard isReady else { return .failure(Self.recovering) }
        let key = "coupon:" + batch.id
        let reserved = creatingEvents.withLock { $0.insert(key).inserted }
        guard reserved else { return .failure(.conflict("a coupon batch with id '\(batch.id)' is being created")) }
        defer { creatingEvents.withLock { _ = $0.remove(key) } }
        let (exists, count) = couponBatches.withLock { ($0[batch.id] != nil, $0.count) }
        guard !exists else { return .failure(.conflict("a coupon batch with id '\(batch.id)' exists")) }
        // Retired batches (their coupons in storage only) do not count.
        guard count - retirement.withLock({ $0.batches.count }) < ConfigLimits.couponsMax else {
            return .failure(.badRequest("at most \(ConfigLimits.couponsMax) coupon batches in all, retired ones aside"))
        }
        if let journal, !journal.acceptsWrites { return .failure(.unavailable(journal.refusalReason)) }
        let records: [JournalRecord] = [.adminCoupon(id: batch.id, body: body, atMs: clock.nowMs())] + (answer.map { [$0] } ?? [])
        let ticket = journal?.append(contentsOf: records) ?? 0
        if let failure = await durable(ticket) { return .failure(failure) }
        adminBatchIDs.withLock { _ = $0.insert(batch.id) }
        await addCouponBatches([batch])
        return .success(batch)
    }

    /// Makes `batches` claimable: on their shards first, then in the engine's table.
    func addCouponBatches(_ batches: [CouponBatchConfig]) async {
        for batch in batches {
            await inventory.shard(forBatch: batch.id).addCouponBatches([batch])
            couponBatches.withLock { $0[batch.id] = batch }
        }
    }
}
