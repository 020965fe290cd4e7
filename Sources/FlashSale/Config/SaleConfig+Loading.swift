import FlashSaleJournal
import Foundation
import Yams

// The schema of config/flashsale.yaml: which keys exist where, their defaults, their rules.

extension SaleConfig {
    /// Reads and checks the config at `path`, or the built-in demo when `path` is nil.
    ///
    /// - Parameters:
    ///   - environment: the process environment; `FLASHSALE_*` variables beat the file.
    ///   - nowMs: the load time, unix epoch milliseconds: what `now` in the file means, and where
    ///     schedules are expanded from.
    public static func load(
        path: String?, environment: [String: String], nowMs: Int64
    ) throws(ConfigError) -> SaleConfig {
        guard let path else {
            return try parse(yaml: demoYAML, sourceName: demoSourceName, environment: environment, nowMs: nowMs)
        }
        let yaml = try readFile(path)
        return try parse(yaml: yaml, sourceName: path, environment: environment, nowMs: nowMs)
    }

    /// Parses and checks a config's YAML text.
    ///
    /// - Parameters:
    ///   - sourceName: the file path (or `"<built-in demo>"`) that errors name.
    ///   - environment: the process environment; `FLASHSALE_*` variables beat the file.
    ///   - nowMs: the load time, unix epoch milliseconds.
    public static func parse(
        yaml: String, sourceName: String, environment: [String: String], nowMs: Int64
    ) throws(ConfigError) -> SaleConfig {
        let context = ConfigContext(source: sourceName, environment: environment, nowMs: nowMs)
        let root = try context.root(try compose(yaml, context: context), keys: Keys.top)
        return try decode(root)
    }

    /// The environment variables that override keys, one per scalar key outside a list, plus
    /// `FLASHSALE_TRUSTED_PROXIES` (comma-separated); for `--help` texts and docs.
    public static var environmentOverrides: [String] {
        Keys.overridablePaths.map { ConfigContext.environmentName(path: $0) }
    }

    /// The keys allowed in each mapping; anything else is an "unknown key" error, to catch typos.
    enum Keys {
        static let top = [
            "http", "ops", "metrics", "data", "timezone", "secrets", "trusted_proxies", "rate_limit", "admission", "payment",
            "group", "engine", "journal", "events", "coupons", "changes", "webhooks", "memory",
        ]
        static let secrets = ["user_token", "user_tokens", "payment", "ops", "admin"]
        static let tokenKey = ["kid", "secret"]
        static let changes = ["retention"]
        static let memory = ["retention"]
        static let webhooks = ["give_up_after", "receivers"]
        static let webhook = ["url", "secret", "types"]
        static let rateLimit = ["per_ip"]
        static let perIP = ["rate", "burst"]
        static let admission = ["max_inflight"]
        static let window = ["window"]
        static let engine = ["shards"]
        static let journal = ["enabled", "synchronous", "batch_max", "checkpoint_interval"]
        static let event = ["id", "kind", "starts_at", "ends_at", "schedule", "items"]
        static let schedule = ["days", "at", "duration", "horizon"]
        static let item = ["sku", "name", "price", "stock", "limit_per_user", "group_size", "group_price"]
        static let coupon = [
            "id", "total", "value", "min_spend", "per_user", "per_ip", "starts_at", "ends_at", "valid_for",
        ]
        /// Every key path that a `FLASHSALE_*` variable can set.
        static let overridablePaths = [
            "http", "ops", "metrics", "data", "timezone", "secrets.user_token", "secrets.payment", "secrets.ops", "secrets.admin",
            "trusted_proxies", "rate_limit.per_ip.rate", "rate_limit.per_ip.burst", "admission.max_inflight",
            "payment.window", "group.window", "engine.shards", "journal.enabled", "journal.synchronous",
            "journal.batch_max", "journal.checkpoint_interval", "changes.retention", "memory.retention",
        ]
    }

    /// Longest schedule window: a week, so a weekday's window ends before the same weekday's next one.
    static let scheduleDurationMsMax: Int64 = 7 * 86_400_000

    // MARK: - Reading and parsing the text

    /// The file's text: at most `ConfigLimits.fileBytesMax` bytes of UTF-8.
    private static func readFile(_ path: String) throws(ConfigError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError(source: path, key: "", problem: "cannot read the config file: no such file")
        }
        guard !isDirectory.boolValue else {
            throw ConfigError(source: path, key: "", problem: "cannot read the config file: it is a directory")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ConfigError(source: path, key: "", problem: "cannot read the config file: permission denied")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: ConfigLimits.fileBytesMax + 1) ?? Data()
        } catch {
            throw ConfigError(source: path, key: "", problem: "cannot read the config file: \(error)")
        }
        guard data.count <= ConfigLimits.fileBytesMax else {
            throw ConfigError(
                source: path, key: "", problem: "config file is larger than \(ConfigLimits.fileBytesMax) bytes")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(source: path, key: "", problem: "config file is not UTF-8 text")
        }
        return text
    }

    /// The YAML document's root node; a syntax error names the parser's line and column.
    static func compose(_ yaml: String, context: ConfigContext) throws(ConfigError) -> Node? {
        do {
            // The basic resolver: values are read from their text by ConfigScalar, not by YAML 1.1 rules.
            return try Yams.compose(yaml: yaml, Resolver.basic, Constructor.default, .utf8)
        } catch let error as YamlError {
            throw context.error("", syntaxProblem(error))
        } catch {
            throw context.error("", "invalid YAML: \(error)")
        }
    }

    /// A parser error in one line: "invalid YAML at line 3, column 7: <problem> (<context>)".
    private static func syntaxProblem(_ error: YamlError) -> String {
        func located(_ mark: Mark, _ problem: String, _ yamlContext: YamlError.Context?) -> String {
            var text = "invalid YAML at line \(mark.line), column \(mark.column): \(problem)"
            if let yamlContext {
                text += " (\(yamlContext.text) at line \(yamlContext.mark.line), column \(yamlContext.mark.column))"
            }
            return text
        }
        switch error {
        case .scanner(let yamlContext, let problem, let mark, _),
            .parser(let yamlContext, let problem, let mark, _),
            .composer(let yamlContext, let problem, let mark, _):
            return located(mark, problem, yamlContext)
        case .duplicatedKeysInMapping(let duplicates, let yamlContext):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return "invalid YAML at line \(yamlContext.mark.line), column \(yamlContext.mark.column): "
                + "duplicate key \(names) in one mapping"
        case .reader(let problem, let offset, _, _):
            return "invalid YAML at character \(offset.map(String.init) ?? "?"): \(problem)"
        default:
            return "invalid YAML: \(error)"
        }
    }

    // MARK: - The schema

    private static func decode(_ root: ConfigMapping) throws(ConfigError) -> SaleConfig {
        let context = root.context
        let http = try root.scalar("http")?.hostPort() ?? defaultHTTP
        let ops = try root.scalar("ops")?.hostPort() ?? defaultOps
        let metricsListener = try root.scalar("metrics")?.hostPort()
        let dataDirectory =
            try root.scalar("data")?.string(bytesMax: ConfigLimits.stringBytesMax) ?? defaultDataDirectory
        let timeZoneIdentifier = try root.scalar("timezone").map(knownTimeZoneIdentifier) ?? defaultTimeZoneIdentifier
        guard let timeZone = TimeZone(identifier: timeZoneIdentifier) else {
            preconditionFailure("time zone \(timeZoneIdentifier) was checked")
        }

        let secretsMapping = try root.mapping("secrets", keys: Keys.secrets)
        let tokenKeys = try decodeTokenKeys(secretsMapping)
        let userTokenScalar = tokenKeys.isEmpty ? try secretsMapping.required("user_token") : try secretsMapping.scalar("user_token")
        let secretScalars = (payment: try secretsMapping.required("payment"), ops: try secretsMapping.required("ops"))
        let adminScalar = try secretsMapping.scalar("admin")
        let secrets = Secrets(
            userToken: try userTokenScalar?.string(bytesMax: ConfigLimits.stringBytesMax),
            payment: try secretScalars.payment.string(bytesMax: ConfigLimits.stringBytesMax),
            ops: try secretScalars.ops.string(bytesMax: ConfigLimits.stringBytesMax),
            admin: try adminScalar?.string(bytesMax: ConfigLimits.stringBytesMax),
            userTokens: tokenKeys)
        // Checked once all are read, so a missing or empty one is named first.
        var checked = [(secretScalars.payment, secrets.payment), (secretScalars.ops, secrets.ops)]
        if let userTokenScalar, let userToken = secrets.userToken { checked.insert((userTokenScalar, userToken), at: 0) }
        if let adminScalar, let admin = secrets.admin { checked.append((adminScalar, admin)) }
        for (scalar, value) in checked where value.utf8.count < ConfigLimits.secretBytesMin {
            throw scalar.error("must be at least \(ConfigLimits.secretBytesMin) bytes long (got \(value.utf8.count)): a short secret can be guessed")
        }

        let trustedProxies = try decodeTrustedProxies(root)

        let perIP = try root.mapping("rate_limit", keys: Keys.rateLimit).mapping("per_ip", keys: Keys.perIP)
        let rate = try perIP.scalar("rate")?.positiveNumber(max: ConfigLimits.rateMax) ?? defaultRateLimitPerIPRate
        let burst = try perIP.scalar("burst")?.integer(1...ConfigLimits.burstMax) ?? defaultRateLimitPerIPBurst
        let maxInflight =
            try root.mapping("admission", keys: Keys.admission).scalar("max_inflight")?
            .integer(1...ConfigLimits.maxInflightMax) ?? defaultAdmissionMaxInflight
        let paymentWindowMs =
            try root.mapping("payment", keys: Keys.window).scalar("window")?.duration() ?? defaultPaymentWindowMs
        let groupWindowMs =
            try root.mapping("group", keys: Keys.window).scalar("window")?.duration() ?? defaultGroupWindowMs
        let shards =
            try root.mapping("engine", keys: Keys.engine).scalar("shards")?.integer(ConfigLimits.shardsRange)
            ?? defaultShards

        let journalMapping = try root.mapping("journal", keys: Keys.journal)
        let journal = JournalConfig(
            enabled: try journalMapping.scalar("enabled")?.boolean() ?? defaultJournal.enabled,
            synchronous: try journalMapping.scalar("synchronous")?.choice(
                ["full", "normal"], JournalSynchronous.init(rawValue:))
                ?? defaultJournal.synchronous,
            batchMax: try journalMapping.scalar("batch_max")?.integer(ConfigLimits.batchMaxRange)
                ?? defaultJournal.batchMax,
            checkpointIntervalMs: try journalMapping.scalar("checkpoint_interval")?.duration()
                ?? defaultJournal.checkpointIntervalMs)

        let (events, recurring) = try decodeEvents(root, timeZone: timeZone)
        let coupons = try decodeCoupons(root)
        let feed = try decodeFeed(root)

        var config = SaleConfig(
            sourceName: context.source, http: http, ops: ops, dataDirectory: dataDirectory,
            timeZoneIdentifier: timeZoneIdentifier, secrets: secrets, trustedProxies: trustedProxies,
            rateLimitPerIPRate: rate, rateLimitPerIPBurst: burst, admissionMaxInflight: maxInflight,
            paymentWindowMs: paymentWindowMs, groupWindowMs: groupWindowMs, shards: shards, journal: journal,
            events: events, coupons: coupons, feed: feed)
        config.metricsListener = metricsListener
        if let retention = try root.mapping("memory", keys: Keys.memory).scalar("retention") {
            config.memoryRetentionMs = try retention.duration(minMs: 3_600_000)
        }
        config.recurring = recurring
        return config
    }

    /// `secrets.user_tokens`: `[{kid, secret}]`, kids unique ids, secrets long enough.
    private static func decodeTokenKeys(_ secrets: ConfigMapping) throws(ConfigError) -> [TokenKey] {
        guard let nodes = try secrets.list("user_tokens") else { return [] }
        guard !nodes.isEmpty else { throw secrets.error("user_tokens", "must list at least one {kid, secret}, or be left out") }
        var keys: [TokenKey] = []
        var pathByKid: [String: String] = [:]
        for (index, node) in nodes.enumerated() {
            let entry = try ConfigMapping(
                node: node, path: secrets.keyPath("user_tokens") + "[\(index)]", keys: Keys.tokenKey, overridable: false,
                context: secrets.context)
            let kidScalar = try entry.required("kid")
            let kid = try kidScalar.id()
            if let other = pathByKid[kid] { throw kidScalar.error("duplicate kid '\(kid)' (also \(other).kid)") }
            pathByKid[kid] = entry.path
            let secretScalar = try entry.required("secret")
            let secret = try secretScalar.string(bytesMax: ConfigLimits.stringBytesMax)
            guard secret.utf8.count >= ConfigLimits.secretBytesMin else {
                throw secretScalar.error("must be at least \(ConfigLimits.secretBytesMin) bytes long (got \(secret.utf8.count)): a short secret can be guessed")
            }
            keys.append(TokenKey(kid: kid, secret: secret))
        }
        return keys
    }

    /// `changes.retention` and `webhooks`: a list of receivers, or a mapping of
    /// `give_up_after` and `receivers`.
    private static func decodeFeed(_ root: ConfigMapping) throws(ConfigError) -> FeedConfig {
        var feed = FeedConfig()
        if let retention = try root.mapping("changes", keys: Keys.changes).scalar("retention") {
            feed.retentionMs = try retention.duration(minMs: 3_600_000)
        }
        let nodes: [Node]
        let listPath: String
        if root.isList("webhooks") {
            nodes = try root.list("webhooks") ?? []
            listPath = "webhooks"
        } else {
            let settings = try root.mapping("webhooks", keys: Keys.webhooks)
            if let giveUp = try settings.scalar("give_up_after") {
                feed.giveUpAfterMs = try giveUp.duration(minMs: 1_000)
                guard feed.giveUpAfterMs <= feed.retentionMs else {
                    throw giveUp.error("must not exceed changes.retention: a change must still be kept when its delivery is given up")
                }
            }
            nodes = try settings.list("receivers") ?? []
            listPath = "webhooks.receivers"
        }
        guard nodes.count <= ConfigLimits.webhooksMax else {
            throw root.error("webhooks", "at most \(ConfigLimits.webhooksMax) receivers")
        }
        guard feed.giveUpAfterMs <= feed.retentionMs else {
            throw root.error("changes.retention", "must be at least webhooks.give_up_after (\(feed.giveUpAfterMs / 1000) s)")
        }
        var pathByURL: [String: String] = [:]
        for (index, node) in nodes.enumerated() {
            let receiver = try ConfigMapping(
                node: node, path: "\(listPath)[\(index)]", keys: Keys.webhook, overridable: false, context: root.context)
            let urlScalar = try receiver.required("url")
            let url = try urlScalar.string(bytesMax: ConfigLimits.stringBytesMax)
            guard WebhookURL(url) != nil else {
                throw urlScalar.error("expected an http:// or https:// URL with a host (got \(urlScalar.quoted))")
            }
            if let other = pathByURL[url] { throw urlScalar.error("duplicate webhook url (also \(other).url)") }
            pathByURL[url] = receiver.path
            let secretScalar = try receiver.required("secret")
            let secret = try secretScalar.string(bytesMax: ConfigLimits.stringBytesMax)
            guard secret.utf8.count >= ConfigLimits.secretBytesMin else {
                throw secretScalar.error("must be at least \(ConfigLimits.secretBytesMin) bytes long (got \(secret.utf8.count)): a short secret can be guessed")
            }
            var types: Set<String>?
            if let typeNodes = try receiver.list("types") {
                var chosen: Set<String> = []
                for (typeIndex, typeNode) in typeNodes.enumerated() {
                    let type = try receiver.element(typeNode, path: receiver.keyPath("types[\(typeIndex)]"))
                    guard ChangeFeedJSON.types.contains(type.text) else {
                        throw type.error("unknown change type \(type.quoted); known: \(ChangeFeedJSON.types.joined(separator: ", "))")
                    }
                    chosen.insert(type.text)
                }
                types = chosen
            }
            feed.receivers.append(WebhookReceiverConfig(url: url, secret: secret, types: types))
        }
        return feed
    }

    /// A time zone identifier that `TimeZone` knows.
    private static func knownTimeZoneIdentifier(_ value: ConfigScalar) throws(ConfigError) -> String {
        guard TimeZone(identifier: value.text) != nil else {
            throw value.error(
                "not a known time zone; expected an IANA name like Asia/Shanghai or UTC (got \(value.quoted))")
        }
        return value.text
    }

    /// `trusted_proxies`: a list of CIDRs in the file, or comma-separated in `FLASHSALE_TRUSTED_PROXIES`.
    private static func decodeTrustedProxies(_ root: ConfigMapping) throws(ConfigError) -> [String] {
        var entries: [ConfigScalar] = []
        if let override = root.context.environmentScalar(path: "trusted_proxies") {
            for part in override.text.split(separator: ",") {
                let text = part.trimmingCharacters(in: .whitespaces)
                if text.isEmpty { continue }
                entries.append(ConfigScalar(text: text, isQuoted: false, source: override.source, key: override.key))
            }
        } else if let nodes = try root.list("trusted_proxies") {
            for (index, node) in nodes.enumerated() {
                entries.append(try root.element(node, path: "trusted_proxies[\(index)]"))
            }
        }
        guard entries.count <= ConfigLimits.trustedProxiesMax else {
            throw entries[0].error("at most \(ConfigLimits.trustedProxiesMax) entries")
        }
        var cidrs: [String] = []
        for entry in entries {
            guard let cidr = IPAddressSyntax.normalizedCIDR(entry.text) else {
                throw entry.error("expected a CIDR like 10.0.0.0/8 or fd00::/8, or an address (got \(entry.quoted))")
            }
            cidrs.append(cidr)
        }
        return cidrs
    }

    /// `events[]`: concrete events in file order, each schedule expanded where it stands.
    static func decodeEvents(
        _ root: ConfigMapping, timeZone: TimeZone
    ) throws(ConfigError) -> (events: [EventConfig], recurring: [RecurringEvent]) {
        let context = root.context
        var events: [EventConfig] = []
        var recurring: [RecurringEvent] = []
        var pathByID: [String: String] = [:]
        for (index, node) in (try root.list("events") ?? []).enumerated() {
            let event = try ConfigMapping(
                node: node, path: "events[\(index)]", keys: Keys.event, overridable: false, context: context)
            let id = try event.required("id").id()
            let kind = try event.required("kind").choice(EventKind.allCases.map(\.rawValue), EventKind.init(rawValue:))
            let (windows, schedule) = try decodeWindows(event, id: id, timeZone: timeZone)
            let items = try decodeItems(event, kind: kind)
            if let schedule {
                recurring.append(RecurringEvent(id: id, kind: kind, items: items, schedule: schedule, timeZoneIdentifier: timeZone.identifier))
            }
            for window in windows {
                if let other = pathByID[window.id] {
                    throw event.error("id", "duplicate event id '\(window.id)' (also \(other).id)")
                }
                pathByID[window.id] = event.path
                events.append(
                    EventConfig(
                        id: window.id, kind: kind, startsAtMs: window.startsAtMs, endsAtMs: window.endsAtMs,
                        items: items))
            }
            guard events.count <= ConfigLimits.eventsMax else {
                throw event.error("id", "more than \(ConfigLimits.eventsMax) events in all, schedules expanded")
            }
        }
        return (events, recurring)
    }

    /// An event's sale windows: its `starts_at`/`ends_at`, or one per day of its `schedule`.
    private static func decodeWindows(
        _ event: ConfigMapping, id: String, timeZone: TimeZone
    ) throws(ConfigError) -> (windows: [(id: String, startsAtMs: Int64, endsAtMs: Int64)], schedule: EventSchedule?) {
        let nowMs = event.context.nowMs
        guard event.has("schedule") else {
            let (startsAtMs, endsAtMs) = try decodeWindow(event)
            return ([(id, startsAtMs, endsAtMs)], nil)
        }
        if event.has("starts_at") || event.has("ends_at") {
            throw event.error("schedule", "give either a schedule or starts_at and ends_at, not both")
        }
        // `<id>-YYYYMMDD` must still be an id.
        guard id.utf8.count + 9 <= ConfigLimits.idBytesMax else {
            throw event.error(
                "id", "too long for a schedule: \(id)-YYYYMMDD must fit \(ConfigLimits.idBytesMax) characters")
        }
        let schedule = try decodeSchedule(try event.mapping("schedule", keys: Keys.schedule))
        let windows = schedule.occurrences(in: timeZone, nowMs: nowMs).map {
            (id: "\(id)-\($0.dateStamp)", startsAtMs: $0.startsAtMs, endsAtMs: $0.endsAtMs)
        }
        return (windows, schedule)
    }

    /// `starts_at` and `ends_at` of an event or a coupon batch; the end after the start.
    private static func decodeWindow(_ mapping: ConfigMapping) throws(ConfigError) -> (Int64, Int64) {
        let nowMs = mapping.context.nowMs
        let startsAtMs = try mapping.required("starts_at").time(nowMs: nowMs)
        let endsAt = try mapping.required("ends_at")
        let endsAtMs = try endsAt.time(nowMs: nowMs)
        guard endsAtMs > startsAtMs else {
            throw endsAt.error(
                "must be after starts_at (\(RFC3339.format(milliseconds: startsAtMs)); "
                    + "got \(RFC3339.format(milliseconds: endsAtMs)))")
        }
        return (startsAtMs, endsAtMs)
    }

    /// `schedule: {days: [wed, fri], at: "20:00", duration: 2h, horizon: 14d}`.
    private static func decodeSchedule(_ mapping: ConfigMapping) throws(ConfigError) -> EventSchedule {
        guard let dayNodes = try mapping.list("days") else { throw mapping.error("days", "required key is missing") }
        guard !dayNodes.isEmpty else { throw mapping.error("days", "must name at least one day") }
        var weekdays: Set<Int> = []
        for (index, node) in dayNodes.enumerated() {
            let day = try mapping.element(node, path: mapping.keyPath("days") + "[\(index)]")
            guard let weekday = EventSchedule.weekdayNumbers[day.text.lowercased()] else {
                throw day.error("expected a day: mon, tue, wed, thu, fri, sat or sun (got \(day.quoted))")
            }
            weekdays.insert(weekday)
        }
        let at = try mapping.required("at")
        guard let (hour, minute) = timeOfDay(at.text) else {
            throw at.error("expected a time of day HH:MM like 20:00 (got \(at.quoted))")
        }
        return EventSchedule(
            weekdays: weekdays, hour: hour, minute: minute,
            durationMs: try mapping.required("duration").duration(maxMs: scheduleDurationMsMax),
            horizonMs: try mapping.scalar("horizon")?.duration(maxMs: ConfigLimits.scheduleHorizonMsMax)
                ?? defaultScheduleHorizonMs)
    }

    /// `HH:MM` (or `H:MM`), 00:00...23:59.
    private static func timeOfDay(_ text: String) -> (Int, Int)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[1].count == 2,
            parts.allSatisfy({ $0.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } }),
            let hour = Int(parts[0]), let minute = Int(parts[1]), hour < 24, minute < 60
        else { return nil }
        return (hour, minute)
    }

    /// `items[]` of one event: at least one, SKUs unique within it.
    private static func decodeItems(_ event: ConfigMapping, kind: EventKind) throws(ConfigError) -> [ItemConfig] {
        guard let nodes = try event.list("items") else { throw event.error("items", "required key is missing") }
        guard !nodes.isEmpty else { throw event.error("items", "must list at least one item") }
        guard nodes.count <= ConfigLimits.itemsPerEventMax else {
            throw event.error("items", "at most \(ConfigLimits.itemsPerEventMax) items in one event")
        }
        var items: [ItemConfig] = []
        var pathBySKU: [String: String] = [:]
        for (index, node) in nodes.enumerated() {
            let item = try ConfigMapping(
                node: node, path: event.keyPath("items") + "[\(index)]", keys: Keys.item, overridable: false,
                context: event.context)
            let sku = try item.required("sku").id()
            if let other = pathBySKU[sku] {
                throw item.error("sku", "duplicate sku '\(sku)' in this event (also \(other).sku)")
            }
            pathBySKU[sku] = item.path
            var config = ItemConfig(
                sku: sku,
                name: try item.required("name").string(bytesMax: ConfigLimits.nameBytesMax),
                priceFen: try item.required("price").integer(0...ConfigLimits.moneyFenMax),
                stock: try item.required("stock").integer(0...ConfigLimits.stockMax),
                limitPerUser: Int32(try item.scalar("limit_per_user")?.integer(1...ConfigLimits.limitPerUserMax) ?? 1))
            switch kind {
            case .groupbuy:
                config.groupSize = try item.required("group_size").integer(ConfigLimits.groupSizeRange)
                config.groupPriceFen = try item.required("group_price").integer(0...ConfigLimits.moneyFenMax)
            case .seckill:
                if item.has("group_size") { throw item.error("group_size", "only items of groupbuy events have one") }
                if item.has("group_price") { throw item.error("group_price", "only items of groupbuy events have one") }
            }
            items.append(config)
        }
        return items
    }

    /// `coupons[]`: batch ids unique.
    static func decodeCoupons(_ root: ConfigMapping) throws(ConfigError) -> [CouponBatchConfig] {
        var coupons: [CouponBatchConfig] = []
        var pathByID: [String: String] = [:]
        let nodes = try root.list("coupons") ?? []
        guard nodes.count <= ConfigLimits.couponsMax else {
            throw root.error("coupons", "at most \(ConfigLimits.couponsMax) coupon batches")
        }
        for (index, node) in nodes.enumerated() {
            let coupon = try ConfigMapping(
                node: node, path: "coupons[\(index)]", keys: Keys.coupon, overridable: false, context: root.context)
            let id = try coupon.required("id").id()
            if let other = pathByID[id] {
                throw coupon.error("id", "duplicate coupon batch id '\(id)' (also \(other).id)")
            }
            pathByID[id] = coupon.path
            let total = try coupon.required("total").integer(0...ConfigLimits.couponTotalMax)
            let valueFen = try coupon.required("value").integer(1...ConfigLimits.moneyFenMax)
            let minSpendFen = try coupon.scalar("min_spend")?.integer(0...ConfigLimits.moneyFenMax) ?? 0
            let perUser = try coupon.scalar("per_user")?.integer(1...ConfigLimits.couponClaimsMax) ?? 1
            let perIP = try coupon.scalar("per_ip")?.integer(1...ConfigLimits.couponClaimsMax) ?? defaultCouponPerIP
            let (startsAtMs, endsAtMs) = try decodeWindow(coupon)
            let validForMs = try coupon.scalar("valid_for")?.duration() ?? defaultCouponValidForMs
            coupons.append(
                CouponBatchConfig(
                    id: id, total: total, valueFen: valueFen, minSpendFen: minSpendFen, perUser: perUser, perIP: perIP,
                    startsAtMs: startsAtMs, endsAtMs: endsAtMs, validForMs: validForMs))
        }
        return coupons
    }
}
