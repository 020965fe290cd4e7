// Reloading the config file while serving (SIGHUP, ops RELOAD): the whole file is read and
// checked as a start would check it, then compared with what runs. What can change live
// changes (new events and schedules, secrets, rate limits, trusted proxies); anything else
// that differs refuses the whole reload, naming it, and nothing changes.

import FlashSaleJournal
import InventoryActor

/// What a checked reload will do.
public struct ReloadPlan: Sendable {
    /// The config as read.
    public var config: SaleConfig
    /// Events new to the catalog.
    public var newEvents: [EventConfig]
    /// Schedules new to the engine.
    public var newRecurring: [RecurringEvent]
    /// Coupon batches new to the engine.
    public var newBatches: [CouponBatchConfig]

    /// One line for the log and the ops reply.
    public var summary: String {
        "events_added=\(newEvents.count) schedules_added=\(newRecurring.count) coupon_batches_added=\(newBatches.count) webhooks=\(config.feed.receivers.count) secrets=reloaded rate_limit=\(config.rateLimitPerIPRate)/\(config.rateLimitPerIPBurst) trusted_proxies=\(config.trustedProxies.count)"
    }
}

extension SaleEngine {
    /// Checks `new` (just read) against `running` (what the engine was built from, or last
    /// reloaded): the plan, or the first difference that needs a restart, as a config error
    /// of `new`'s file.
    public func planReload(from running: SaleConfig, to new: SaleConfig) -> Result<ReloadPlan, ConfigError> {
        func refuse(_ key: String, _ problem: String) -> Result<ReloadPlan, ConfigError> {
            .failure(ConfigError(source: new.sourceName, key: key, problem: problem + "; nothing was reloaded"))
        }
        let restartOnly: [(String, Bool)] = [
            ("http", running.http != new.http), ("ops", running.ops != new.ops),
            ("metrics", running.metricsListener != new.metricsListener), ("data", running.dataDirectory != new.dataDirectory),
            ("timezone", running.timeZoneIdentifier != new.timeZoneIdentifier), ("engine.shards", running.shards != new.shards),
            ("journal", running.journal != new.journal), ("payment.window", running.paymentWindowMs != new.paymentWindowMs),
            ("group.window", running.groupWindowMs != new.groupWindowMs),
            ("admission.max_inflight", running.admissionMaxInflight != new.admissionMaxInflight),
            ("changes.retention", running.feed.retentionMs != new.feed.retentionMs),
            ("memory.retention", running.memoryRetentionMs != new.memoryRetentionMs),
        ]
        if let (key, _) = restartOnly.first(where: \.1) { return refuse(key, "changes only with a restart") }

        let recurringNow = recurring.withLock { $0 }
        let admin = adminEventIDs.withLock { $0 }
        var newRecurring: [RecurringEvent] = []
        for schedule in new.recurring {
            if admin.contains(schedule.id) {
                return refuse("events", "id '\(schedule.id)' is also an event created through the admin API; remove it from this file or give it another id")
            }
            if let existing = recurringNow.first(where: { $0.id == schedule.id }) {
                guard existing == schedule else { return refuse("events", "the schedule '\(schedule.id)' differs from the one running: a running schedule changes only with a restart") }
            } else {
                newRecurring.append(schedule)
            }
        }
        for schedule in running.recurring where !new.recurring.contains(where: { $0.id == schedule.id }) {
            return refuse("events", "the schedule '\(schedule.id)' is gone from the file: removing one needs a restart")
        }
        let scheduled = { (id: String) in (running.recurring + new.recurring).contains { id.hasPrefix($0.id + "-") } }
        var newEvents: [EventConfig] = []
        for event in new.events {
            if admin.contains(event.id) {
                return refuse("events", "id '\(event.id)' is also an event created through the admin API; remove it from this file or give it another id")
            }
            // Against the file as it was read (an admin edit since then is not the file's change).
            if let existing = running.events.first(where: { $0.id == event.id }) ?? catalog.event(event.id)?.config {
                guard existing == event else {
                    return refuse("events", "the event '\(event.id)' differs from the one on sale: an event changes through the admin API or ops, not by reload")
                }
                if catalog.event(event.id) == nil { newEvents.append(event) }
            } else {
                newEvents.append(event)
            }
        }
        for event in running.events where !scheduled(event.id) && !new.events.contains(where: { $0.id == event.id }) {
            return refuse("events", "the event '\(event.id)' is gone from the file: removing an event needs a restart")
        }
        let adminBatches = adminBatchIDs.withLock { $0 }
        var newBatches: [CouponBatchConfig] = []
        for batch in new.coupons {
            if adminBatches.contains(batch.id) {
                return refuse("coupons", "id '\(batch.id)' is also a coupon batch created through the admin API; remove it from this file or give it another id")
            }
            if let existing = running.coupons.first(where: { $0.id == batch.id }) {
                guard existing == batch else { return refuse("coupons", "the batch '\(batch.id)' differs from the one running: a batch changes only with a restart") }
            } else {
                newBatches.append(batch)
            }
        }
        for batch in running.coupons where !new.coupons.contains(where: { $0.id == batch.id }) {
            return refuse("coupons", "the batch '\(batch.id)' is gone from the file: removing one needs a restart")
        }
        return .success(ReloadPlan(config: new, newEvents: newEvents, newRecurring: newRecurring, newBatches: newBatches))
    }

    /// Applies the engine's part of `plan`: the secrets, then the new schedules and events.
    public func apply(_ plan: ReloadPlan) async {
        credentials.replace(with: plan.config.secrets)
        recurring.withLock { $0.append(contentsOf: plan.newRecurring) }
        await addEvents(plan.newEvents, by: "reload")
        await addCouponBatches(plan.newBatches)
        await rollSchedules()
    }
}

/// What reloads the config: installed by the daemon, called by ops `RELOAD` and SIGHUP.
public typealias ConfigReload = @Sendable () async -> Result<String, ConfigError>

extension SaleEngine {
    /// Installs what `reload()` runs.
    public func setReloader(_ reload: @escaping ConfigReload) {
        reloader.withLock { $0 = reload }
    }

    /// Re-reads and applies the config file: the plan's summary, or why nothing changed.
    public func reload() async -> Result<String, ConfigError> {
        guard let reload = reloader.withLock({ $0 }) else {
            return .failure(ConfigError(source: "", key: "", problem: "this engine has no config file to reload"))
        }
        return await reload()
    }
}
