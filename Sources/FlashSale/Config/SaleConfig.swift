import Foundation
// Config: what `flashsaled` is told to sell and how it runs, read once at start.
//
// This folder owns the model of `config/flashsale.yaml` (§5), the parsing of its YAML,
// its validation and the `FLASHSALE_*` environment overrides. It must never read the clock
// (the caller passes `nowMs`), read the environment itself (the caller passes it), or do any
// I/O but reading the one config file named to `load`. Everything it returns is checked:
// code downstream trusts a `SaleConfig` and does not validate it again.

import FlashSaleJournal
import InventoryActor

/// The kind of sale an event runs.
public enum EventKind: String, Sendable, CaseIterable {
    /// First come, first served: each order holds stock until paid.
    case seckill
    /// Group-buy: an order counts only when `groupSize` members of its group have paid.
    case groupbuy
}

/// One SKU on sale in one event.
public struct ItemConfig: Sendable, Equatable {
    /// The SKU id, `[A-Za-z0-9._-]{1,64}`, unique within its event.
    public var sku: String
    /// The name shown to buyers.
    public var name: String
    /// Price of one unit, in fen.
    public var priceFen: Int64
    /// Units put on sale: the `total` of the item's stock counters at the start.
    public var stock: Int64
    /// Most units one user may hold (pending + paid) in this event.
    public var limitPerUser: Int32
    /// Members a group needs to form; set for groupbuy items only (2...50).
    public var groupSize: Int?
    /// Price of one unit bought in a group, in fen; set for groupbuy items only.
    public var groupPriceFen: Int64?

    /// Creates an item; `SaleConfig.parse` is the checked way to get one.
    public init(
        sku: String, name: String, priceFen: Int64, stock: Int64, limitPerUser: Int32,
        groupSize: Int? = nil, groupPriceFen: Int64? = nil
    ) {
        self.sku = sku
        self.name = name
        self.priceFen = priceFen
        self.stock = stock
        self.limitPerUser = limitPerUser
        self.groupSize = groupSize
        self.groupPriceFen = groupPriceFen
    }
}

/// One concrete sale window: a config event, or one day of a recurring schedule.
public struct EventConfig: Sendable, Equatable {
    /// The event id; a schedule's days are named `<id>-<YYYYMMDD>` (date in the config's time zone).
    public var id: String
    /// Seckill or group-buy.
    public var kind: EventKind
    /// Start of the sale, unix epoch milliseconds.
    public var startsAtMs: Int64
    /// End of the sale, unix epoch milliseconds; always after `startsAtMs`.
    public var endsAtMs: Int64
    /// The SKUs on sale, at least one, in file order.
    public var items: [ItemConfig]

    /// Creates an event; `SaleConfig.parse` is the checked way to get one.
    public init(id: String, kind: EventKind, startsAtMs: Int64, endsAtMs: Int64, items: [ItemConfig]) {
        self.id = id
        self.kind = kind
        self.startsAtMs = startsAtMs
        self.endsAtMs = endsAtMs
        self.items = items
    }
}

/// An event with a weekly `schedule`: the template its days are made from. The config holds
/// the days within the schedule's horizon of the load time; the engine keeps making the next
/// ones as time passes (`SaleEngine.rollSchedules`), for as long as the daemon runs.
public struct RecurringEvent: Sendable, Equatable {
    /// The id its days are named after: `<id>-YYYYMMDD`.
    public var id: String
    /// Seckill or group-buy.
    public var kind: EventKind
    /// The SKUs of every day.
    public var items: [ItemConfig]
    /// The weekdays, time and length, and the horizon.
    var schedule: EventSchedule
    /// The time zone of the schedule's days and times.
    public var timeZoneIdentifier: String

    /// The days whose window ends after `nowMs` - 24 h and starts before `nowMs` + the
    /// horizon, as concrete events, in time order.
    public func events(nowMs: Int64) -> [EventConfig] {
        guard let timeZone = TimeZone(identifier: timeZoneIdentifier) else { return [] }
        return schedule.occurrences(in: timeZone, nowMs: nowMs).map {
            EventConfig(id: "\(id)-\($0.dateStamp)", kind: kind, startsAtMs: $0.startsAtMs, endsAtMs: $0.endsAtMs, items: items)
        }
    }
}

/// A batch of coupons that buyers claim and then spend on an order: the core's own rules type,
/// so the configuration and the owner of the batch speak of one thing.
public typealias CouponBatchConfig = CouponBatchRules

/// The shared secrets, all non-empty.
///
/// Its `description` hides the values, so logging a config never leaks them.
public struct Secrets: Sendable, Equatable, CustomStringConvertible {
    /// HS256 key of buyer tokens without a key id (`secrets.user_token`); nil when only
    /// `user_tokens` are given.
    public var userToken: String?
    /// HS256 keys of buyer tokens with key ids (`secrets.user_tokens`), the first signing
    /// `flashsaled token`'s; every one listed is accepted, so a rotation logs no one out.
    public var userTokens: [TokenKey] = []
    /// HMAC-SHA256 key of payment notifications (`secrets.payment`).
    public var payment: String
    /// Password of the ops `AUTH` command (`secrets.ops`).
    public var ops: String
    /// Bearer token of the admin API (`secrets.admin`); nil: the admin API refuses every call.
    public var admin: String?

    /// Every key a buyer token may be signed with: the ones with ids, then the one without.
    public var tokenKeys: [TokenKey] {
        userTokens + (userToken.map { [TokenKey(kid: nil, secret: $0)] } ?? [])
    }

    /// The key new tokens are signed with: the first of `user_tokens`, else `user_token`.
    public var signingKey: TokenKey { tokenKeys[0] }

    /// Creates the secrets.
    public init(userToken: String?, payment: String, ops: String, admin: String? = nil, userTokens: [TokenKey] = []) {
        precondition(userToken != nil || !userTokens.isEmpty, "a buyer-token key is required")
        self.userTokens = userTokens
        self.userToken = userToken
        self.payment = payment
        self.ops = ops
        self.admin = admin
    }

    /// The field names with their values redacted.
    public var description: String {
        "Secrets(userToken: \(userToken == nil ? "none" : "<redacted>"), userTokens: \(userTokens.map { $0.kid ?? "" }), "
            + "payment: <redacted>, ops: <redacted>, admin: \(admin == nil ? "none" : "<redacted>"))"
    }
}

/// How the journal (the SQLite database in the data directory) writes.
public struct JournalConfig: Sendable, Equatable {
    /// Whether changes are journaled at all; off only for benchmarks, since nothing survives a restart.
    public var enabled: Bool
    /// SQLite's `synchronous` setting: `full` (fsync every commit, the default) or `normal`.
    public var synchronous: JournalSynchronous
    /// Most records written in one transaction.
    public var batchMax: Int
    /// Time between checkpoints, in milliseconds.
    public var checkpointIntervalMs: Int64

    /// Creates a journal config.
    public init(enabled: Bool, synchronous: JournalSynchronous, batchMax: Int, checkpointIntervalMs: Int64) {
        self.enabled = enabled
        self.synchronous = synchronous
        self.batchMax = batchMax
        self.checkpointIntervalMs = checkpointIntervalMs
    }
}

/// One receiver of the change feed (`webhooks[]`, §6).
public struct WebhookReceiverConfig: Sendable, Equatable {
    /// Where changes are POSTed (`http://` or `https://`).
    public var url: String
    /// The HMAC-SHA256 key of the `X-FlashSale-Signature` header.
    public var secret: String
    /// The change types it gets; nil: every type.
    public var types: Set<String>?

    /// A receiver.
    public init(url: String, secret: String, types: Set<String>? = nil) {
        self.url = url
        self.secret = secret
        self.types = types
    }
}

/// The change feed and its webhooks (`changes.*`, `webhooks`).
public struct FeedConfig: Sendable, Equatable {
    /// Change events are kept at least this long, ms (`changes.retention`).
    public var retentionMs: Int64
    /// A delivery failing this long is parked, ms (`webhooks.give_up_after`).
    public var giveUpAfterMs: Int64
    /// The receivers, in file order; URLs unique.
    public var receivers: [WebhookReceiverConfig]

    /// A feed config.
    public init(retentionMs: Int64 = 7 * 86_400_000, giveUpAfterMs: Int64 = 86_400_000, receivers: [WebhookReceiverConfig] = []) {
        self.retentionMs = retentionMs
        self.giveUpAfterMs = giveUpAfterMs
        self.receivers = receivers
    }
}

/// Everything `flashsaled` reads from its config file (§5), validated, with the
/// `FLASHSALE_*` environment overrides applied and recurring schedules expanded.
///
/// Get one from `load(path:environment:nowMs:)` or `parse(yaml:sourceName:environment:nowMs:)`.
/// Command-line flags, which beat the environment, are applied by the caller afterwards.
public struct SaleConfig: Sendable, Equatable {
    /// The file the config came from, or `"<built-in demo>"`; the source named in errors.
    public var sourceName: String
    /// Buyer HTTP listener (`http`).
    public var http: HostPort
    /// Ops line-protocol listener (`ops`).
    public var ops: HostPort
    /// A listener of its own for `/metrics` (and the health checks), `metrics`; nil: `/metrics`
    /// is served on the buyer port.
    public var metricsListener: HostPort?
    /// Directory of the SQLite journal (`data`).
    public var dataDirectory: String
    /// Time zone of schedules (`timezone`); a valid `TimeZone` identifier.
    public var timeZoneIdentifier: String
    /// The shared secrets (`secrets.*`).
    public var secrets: Secrets
    /// Peers whose `X-Forwarded-For` is believed (`trusted_proxies`), as CIDRs: a bare address
    /// in the file comes out as `/32` or `/128`.
    public var trustedProxies: [String]
    /// Buyer requests per second per client IP (`rate_limit.per_ip.rate`).
    public var rateLimitPerIPRate: Double
    /// Token-bucket size per client IP (`rate_limit.per_ip.burst`).
    public var rateLimitPerIPBurst: Int
    /// Requests in flight before the engine answers `503 overloaded` (`admission.max_inflight`).
    public var admissionMaxInflight: Int
    /// Time a pending order waits for payment, in milliseconds (`payment.window`).
    public var paymentWindowMs: Int64
    /// Time a group has to form, in milliseconds (`group.window`).
    public var groupWindowMs: Int64
    /// Number of inventory shards (`engine.shards`).
    public var shards: Int
    /// Journal settings (`journal.*`).
    public var journal: JournalConfig
    /// Concrete events, schedules expanded, in file order; ids unique.
    public var events: [EventConfig]
    /// The events with a `schedule`, whose days keep coming while the daemon runs.
    public var recurring: [RecurringEvent] = []
    /// Coupon batches in file order; ids unique.
    public var coupons: [CouponBatchConfig]
    /// The change feed's retention and its webhook receivers.
    public var feed: FeedConfig
    /// How long after its end an event's orders, groups and ledgers stay in memory, ms
    /// (`memory.retention`); then they are in storage only.
    public var memoryRetentionMs: Int64 = 7 * 86_400_000

    /// Creates a config from checked parts; `parse` is the checked way to get one.
    public init(
        sourceName: String, http: HostPort, ops: HostPort, dataDirectory: String, timeZoneIdentifier: String,
        secrets: Secrets, trustedProxies: [String], rateLimitPerIPRate: Double, rateLimitPerIPBurst: Int,
        admissionMaxInflight: Int, paymentWindowMs: Int64, groupWindowMs: Int64, shards: Int,
        journal: JournalConfig, events: [EventConfig], coupons: [CouponBatchConfig], feed: FeedConfig = FeedConfig()
    ) {
        self.feed = feed
        self.sourceName = sourceName
        self.http = http
        self.ops = ops
        self.dataDirectory = dataDirectory
        self.timeZoneIdentifier = timeZoneIdentifier
        self.secrets = secrets
        self.trustedProxies = trustedProxies
        self.rateLimitPerIPRate = rateLimitPerIPRate
        self.rateLimitPerIPBurst = rateLimitPerIPBurst
        self.admissionMaxInflight = admissionMaxInflight
        self.paymentWindowMs = paymentWindowMs
        self.groupWindowMs = groupWindowMs
        self.shards = shards
        self.journal = journal
        self.events = events
        self.coupons = coupons
    }
}

// MARK: - Defaults and limits

extension SaleConfig {
    /// Default buyer HTTP listener: loopback only, so a first run exposes nothing.
    public static let defaultHTTP = HostPort(host: "127.0.0.1", port: 8080)
    /// Default ops listener: loopback only; ops commands can pause sales.
    public static let defaultOps = HostPort(host: "127.0.0.1", port: 7070)
    /// Default data directory, relative to the working directory.
    public static let defaultDataDirectory = "./data"
    /// Default time zone of schedules.
    public static let defaultTimeZoneIdentifier = "Asia/Shanghai"
    /// Default buyer requests per second per IP.
    public static let defaultRateLimitPerIPRate: Double = 20
    /// Default token-bucket size per IP.
    public static let defaultRateLimitPerIPBurst = 40
    /// Default requests in flight before shedding load.
    public static let defaultAdmissionMaxInflight = 4096
    /// Default payment window: 15 minutes.
    public static let defaultPaymentWindowMs: Int64 = 15 * 60_000
    /// Default group window: 24 hours.
    public static let defaultGroupWindowMs: Int64 = 24 * 3_600_000
    /// Default shard count.
    public static let defaultShards = 16
    /// Default journal: on, fsync per commit, 4096 records per transaction, checkpoint every 30 s.
    public static let defaultJournal = JournalConfig(
        enabled: true, synchronous: .full, batchMax: 4096, checkpointIntervalMs: 30_000)
    /// Default horizon of a schedule: its days are expanded this far ahead of the load time.
    public static let defaultScheduleHorizonMs: Int64 = 14 * 86_400_000
    /// Default time a claimed coupon stays spendable: 24 hours.
    public static let defaultCouponValidForMs: Int64 = 24 * 3_600_000
    /// Default coupons one client IP may claim from a batch.
    public static let defaultCouponPerIP = 3
    /// The prefix of environment overrides; `FLASHSALE_CONFIG` (the file path) is the CLI's, not a key.
    public static let environmentPrefix = "FLASHSALE_"
}

/// Upper bounds of config values, each with its reason; checked when the config is parsed.
enum ConfigLimits {
    /// Largest config file read: a config is hand-written; megabytes of it are a mistake.
    static let fileBytesMax = 1 << 20
    /// Longest id (events, SKUs, coupon batches), from the contract's id pattern.
    static let idBytesMax = 64
    /// Longest item name: what a buyer's screen shows, not a description.
    static let nameBytesMax = 256
    /// Longest secret, data path or other free string: far above any real one.
    static let stringBytesMax = 4096
    /// Largest price or coupon amount, in fen (10 million yuan): price × limit stays far from Int64 overflow.
    static let moneyFenMax: Int64 = 1_000_000_000
    /// Largest stock of one item: counters stay far from Int64 overflow.
    static let stockMax: Int64 = 1_000_000_000
    /// Shortest secret (`secrets.*`), bytes (§5).
    public static let secretBytesMin = 16
    /// Largest coupon batch.
    static let couponTotalMax: Int64 = 1_000_000_000
    /// Largest `limit_per_user`: an order's qty is an Int32 and price × qty must not overflow.
    static let limitPerUserMax = 100_000
    /// Group sizes the contract allows (§3.5).
    static let groupSizeRange = 2...50
    /// Largest `per_user` / `per_ip` of a coupon batch.
    static let couponClaimsMax = 1_000_000
    /// Largest per-IP rate, requests per second.
    static let rateMax: Double = 1_000_000
    /// Largest per-IP burst.
    static let burstMax = 1_000_000
    /// Largest `admission.max_inflight`: each request in flight holds memory.
    static let maxInflightMax = 1_000_000
    /// Shard counts allowed; a shard is an actor, and more than the slot count (1024) is pointless.
    static let shardsRange = 1...1024
    /// Records per journal transaction allowed.
    static let batchMaxRange = 1...65536
    /// Longest duration anywhere: a year; keeps millisecond sums far from overflow.
    static let durationMsMax: Int64 = 366 * 86_400_000
    /// Longest schedule horizon: each day in it becomes an event that the engine holds in memory.
    static let scheduleHorizonMsMax: Int64 = 92 * 86_400_000
    /// Most events after expansion: each item of each event is a stock ledger in memory.
    static let eventsMax = 10_000
    /// Most items in one event.
    static let itemsPerEventMax = 1_000
    /// Most coupon batches.
    static let couponsMax = 1_000
    /// Most webhook receivers: each has a delivery task and a connection of its own.
    static let webhooksMax = 16
    /// Most trusted proxy CIDRs: each request's forwarded chain is matched against all of them.
    static let trustedProxiesMax = 1_000
}
