import Foundation
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleOps
@testable import FlashSaleJournal

/// Tests of the config loader: config/flashsale.yaml and the demo parse, schedules expand to the
/// right UTC instants, every rule refuses what it should and names the key, env beats the file.
///
/// Helpers are static members here, not file-level declarations, so they cannot clash with
/// other test files of the module.
struct ConfigTests {
    // MARK: - Helpers

    /// Unix epoch milliseconds of a UTC wall-clock time, computed by Foundation (not by the code under test).
    static func utcMs(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let date = calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute))!
        return Int64(date.timeIntervalSince1970) * 1000
    }

    static let hourMs: Int64 = 3_600_000
    static let dayMs: Int64 = 86_400_000

    /// Wednesday 2026-11-25, 10:00 UTC (18:00 in Asia/Shanghai): two hours before the 20:00 sale.
    static let wednesdayMs = utcMs(2026, 11, 25, 10)

    /// The package root: this file is `<root>/Tests/FlashSaleTests/ConfigTests.swift`.
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let shippedConfigPath = packageRoot.appendingPathComponent("config/flashsale.yaml").path

    /// The smallest valid config: the three secrets.
    static let secretsYAML = """
        secrets:
          user_token: user-token-secret-0
          payment: payment-secret-000
          ops: ops-password-0000

        """

    static func parse(_ yaml: String, environment: [String: String] = [:], nowMs: Int64 = wednesdayMs)
        throws(ConfigError)
        -> SaleConfig
    {
        try SaleConfig.parse(yaml: yaml, sourceName: "test.yaml", environment: environment, nowMs: nowMs)
    }

    /// The error parsing `yaml` throws; a failed expectation (and nil) when it parses.
    static func parseError(
        _ yaml: String, environment: [String: String] = [:], nowMs: Int64 = wednesdayMs,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> ConfigError? {
        do {
            let config = try parse(yaml, environment: environment, nowMs: nowMs)
            Issue.record("expected an error, parsed \(config.events.count) events", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("config-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    // MARK: - The shipped file and the demo

    @Suite struct ShippedAndDemoConfigTests {
        @Test func shippedFileParsesWithDemoEventsAndTheScheduledWednesdaysAndFridays() throws {
            let config = try SaleConfig.load(path: shippedConfigPath, environment: [:], nowMs: wednesdayMs)
            #expect(config.sourceName == shippedConfigPath)
            #expect(config.http == HostPort(host: "127.0.0.1", port: 8080))
            #expect(config.ops == HostPort(host: "127.0.0.1", port: 7070))
            #expect(config.dataDirectory == "./data")
            #expect(config.timeZoneIdentifier == "Asia/Shanghai")
            #expect(
                config.secrets
                    == Secrets(
                        userToken: "demo-user-token-secret", payment: "demo-payment-secret", ops: "demo-ops-password",
                        admin: "demo-admin-token-secret"))
            #expect(config.trustedProxies == [])
            #expect(config.rateLimitPerIPRate == 20)
            #expect(config.rateLimitPerIPBurst == 40)
            #expect(config.admissionMaxInflight == 4096)
            #expect(config.paymentWindowMs == 15 * 60_000)
            #expect(config.groupWindowMs == 24 * hourMs)
            #expect(config.shards == 16)
            #expect(
                config.journal
                    == JournalConfig(enabled: true, synchronous: .full, batchMax: 4096, checkpointIntervalMs: 30_000))
            #expect(
                config.events.map(\.id) == [
                    "demo", "demo-group", "wed-fri-8pm-20261125", "wed-fri-8pm-20261127", "wed-fri-8pm-20261202",
                    "wed-fri-8pm-20261204",
                ])
            let scheduled = config.events.filter { $0.id.hasPrefix("wed-fri-8pm-") }
            // 20:00 in Asia/Shanghai (UTC+8, no daylight saving) is 12:00 UTC.
            #expect(
                scheduled.map(\.startsAtMs) == [
                    utcMs(2026, 11, 25, 12), utcMs(2026, 11, 27, 12), utcMs(2026, 12, 2, 12), utcMs(2026, 12, 4, 12),
                ])
            #expect(scheduled.allSatisfy { $0.endsAtMs == $0.startsAtMs + hourMs && $0.kind == .seckill })
            #expect(
                scheduled.first?.items == [
                    ItemConfig(sku: "S1", name: "Rice cooker", priceFen: 9900, stock: 500, limitPerUser: 1),
                    ItemConfig(sku: "S2", name: "Power bank", priceFen: 3900, stock: 2000, limitPerUser: 2),
                ])
            // Everything of the demo is in the shipped file too.
            let demo = try SaleConfig.load(path: nil, environment: [:], nowMs: wednesdayMs)
            #expect(Array(config.events.prefix(2)) == demo.events)
            #expect(config.coupons == demo.coupons)
        }

        @Test func demoConfigHasOneLiveSeckillOneLiveGroupBuyAndOneCouponBatch() throws {
            let nowMs = utcMs(2027, 1, 1, 3, 4)
            let config = try SaleConfig.load(path: nil, environment: [:], nowMs: nowMs)
            #expect(config.sourceName == "<built-in demo>")
            #expect(config.http == SaleConfig.defaultHTTP)
            #expect(config.ops == SaleConfig.defaultOps)
            #expect(config.dataDirectory == "./data")
            #expect(
                config.secrets
                    == Secrets(
                        userToken: "demo-user-token-secret", payment: "demo-payment-secret", ops: "demo-ops-password",
                        admin: "demo-admin-token-secret"))
            #expect(config.paymentWindowMs == 15 * 60_000)
            #expect(config.groupWindowMs == hourMs)
            #expect(
                config.events == [
                    EventConfig(
                        id: "demo", kind: .seckill, startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 24 * hourMs,
                        items: [
                            ItemConfig(sku: "A1", name: "Phone case", priceFen: 990, stock: 100, limitPerUser: 2),
                            ItemConfig(sku: "B2", name: "Earbuds", priceFen: 4900, stock: 20, limitPerUser: 1),
                        ]),
                    EventConfig(
                        id: "demo-group", kind: .groupbuy, startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 24 * hourMs,
                        items: [
                            ItemConfig(
                                sku: "G1", name: "Tea set", priceFen: 8800, stock: 30, limitPerUser: 1, groupSize: 3,
                                groupPriceFen: 5900)
                        ]),
                ])
            #expect(
                config.coupons == [
                    CouponBatchConfig(
                        id: "demo-coupon", total: 100, valueFen: 500, minSpendFen: 2000, perUser: 1, perIP: 3,
                        startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 24 * hourMs, validForMs: 24 * hourMs)
                ])
        }

        @Test func secretsDescriptionHidesTheValues() {
            let text = "\(Secrets(userToken: "tok-123", payment: "pay-456", ops: "ops-789"))"
            #expect(!text.contains("tok-123") && !text.contains("pay-456") && !text.contains("ops-789"))
        }
    }

    // MARK: - Schedules

    @Suite struct ScheduleExpansionTests {
        private func scheduled(
            days: String = "[wed, fri]", at: String = "\"20:00\"", duration: String = "1h", extra: String = "",
            timezone: String = "Asia/Shanghai", nowMs: Int64
        ) throws -> [EventConfig] {
            try parse(
                secretsYAML + """
                    timezone: \(timezone)
                    events:
                      - id: wk
                        kind: seckill
                        schedule: { days: \(days), at: \(at), duration: \(duration)\(extra) }
                        items: [{ sku: S1, name: Cooker, price: 100, stock: 5 }]
                    """, nowMs: nowMs
            ).events
        }

        @Test func wednesdayAndFridayAt8pmShanghaiExpandToNoonUTCForTwoWeeks() throws {
            let events = try scheduled(nowMs: wednesdayMs)
            #expect(events.map(\.id) == ["wk-20261125", "wk-20261127", "wk-20261202", "wk-20261204"])
            #expect(events.first?.startsAtMs == 1_795_608_000_000)  // 2026-11-25T12:00:00Z, from `date -u`
            #expect(
                events.map(\.startsAtMs) == [
                    utcMs(2026, 11, 25, 12), utcMs(2026, 11, 27, 12), utcMs(2026, 12, 2, 12), utcMs(2026, 12, 4, 12),
                ])
        }

        @Test func aDayEndedLessThan24HoursAgoIsKeptAndOneEndedEarlierIsNot() throws {
            // Thursday 12:30 UTC: Wednesday's sale ended 23.5 h ago; the Friday before ended days ago.
            let events = try scheduled(nowMs: utcMs(2026, 11, 26, 12, 30))
            #expect(events.first?.id == "wk-20261125")
            // Thursday 13:30 UTC: Wednesday's sale ended 24.5 h ago.
            let later = try scheduled(nowMs: utcMs(2026, 11, 26, 13, 30))
            #expect(later.first?.id == "wk-20261127")
        }

        @Test func horizonLimitsHowFarAheadDaysAreExpanded() throws {
            let events = try scheduled(extra: ", horizon: 3d", nowMs: wednesdayMs)
            #expect(events.map(\.id) == ["wk-20261125", "wk-20261127"])
        }

        @Test func dayNamesAreCaseInsensitiveAndTheDateIsTheLocalOne() throws {
            // 07:30 on Thursday in Shanghai is 23:30 UTC on Wednesday: the id carries the local date.
            let events = try scheduled(days: "[THU]", at: "\"07:30\"", nowMs: wednesdayMs)
            #expect(events.first?.id == "wk-20261126")
            #expect(events.first?.startsAtMs == utcMs(2026, 11, 25, 23, 30))
        }

        @Test func localStartTimeStaysPutAcrossADaylightSavingChange() throws {
            // New York moves from EST (UTC-5) to EDT (UTC-4) on 2026-03-08.
            let events = try scheduled(
                days: "[wed]", at: "\"20:00\"", timezone: "America/New_York", nowMs: utcMs(2026, 3, 2))
            #expect(events.map(\.id) == ["wk-20260304", "wk-20260311"])
            #expect(events.map(\.startsAtMs) == [utcMs(2026, 3, 5, 1), utcMs(2026, 3, 12, 0)])
        }

        @Test func aStartInTheSpringForwardGapMovesForwardWithTheClocks() throws {
            // On 2026-03-08 New York's clocks jump from 02:00 EST to 03:00 EDT: 02:30 is 03:30 EDT that day.
            let events = try scheduled(
                days: "[sun]", at: "\"02:30\"", timezone: "America/New_York", nowMs: utcMs(2026, 3, 6))
            #expect(events.map(\.id) == ["wk-20260308", "wk-20260315"])
            #expect(events.map(\.startsAtMs) == [utcMs(2026, 3, 8, 7, 30), utcMs(2026, 3, 15, 6, 30)])
        }

        @Test func expansionFollowsTheTimezoneOverride() throws {
            let events = try parse(
                secretsYAML + """
                    events:
                      - id: wk
                        kind: seckill
                        schedule: { days: [wed], at: "20:00", duration: 1h }
                        items: [{ sku: S1, name: Cooker, price: 100, stock: 5 }]
                    """, environment: ["FLASHSALE_TIMEZONE": "UTC"]
            ).events
            #expect(events.first?.id == "wk-20261125")
            #expect(events.first?.startsAtMs == utcMs(2026, 11, 25, 20))
        }

        @Test func anExpandedIDThatCollidesWithAnotherEventIsADuplicate() throws {
            let error = parseError(
                secretsYAML + """
                    events:
                      - id: wk-20261125
                        kind: seckill
                        starts_at: 2026-11-25T00:00:00Z
                        ends_at: 2026-11-25T01:00:00Z
                        items: [{ sku: S1, name: Cooker, price: 100, stock: 5 }]
                      - id: wk
                        kind: seckill
                        schedule: { days: [wed], at: "20:00", duration: 1h }
                        items: [{ sku: S1, name: Cooker, price: 100, stock: 5 }]
                    """)
            #expect(error?.key == "events[1].id")
            #expect(error?.problem.contains("duplicate event id 'wk-20261125'") == true)
        }
    }

    // MARK: - Validation

    /// One bad config and the error it must give.
    struct BadConfigRow: Sendable, CustomTestStringConvertible {
        let yaml: String
        let key: String
        let problem: String
        let testDescription: String

        init(_ name: String, _ yaml: String, key: String, problem: String) {
            self.testDescription = name
            self.yaml = yaml
            self.key = key
            self.problem = problem
        }
    }

    static func event(kind: String = "seckill", id: String = "e1", window: String? = nil, items: String) -> String {
        """
          - id: \(id)
            kind: \(kind)
        \(window ?? "    starts_at: 2026-11-25T12:00:00Z\n    ends_at: 2026-11-25T13:00:00Z")
            items:
        \(items)

        """
    }

    static let goodItem = "      - { sku: A1, name: Case, price: 990, stock: 10 }"
    static let goodGroupItem =
        "      - { sku: G1, name: Tea, price: 8800, stock: 30, group_size: 3, group_price: 5900 }"

    static func coupon(_ fields: String = "", id: String = "c1", window: String = "starts_at: now, ends_at: now+1h")
        -> String
    {
        "  - { id: \(id), total: 10, value: 500, \(window)\(fields) }\n"
    }

    static let badConfigRows: [BadConfigRow] = [
        // Items.
        .init(
            "negative stock",
            secretsYAML + "events:\n" + event(items: goodItem)
                + event(id: "e2", items: "      - { sku: A1, name: Case, price: 990, stock: -5 }"),
            key: "events[1].items[0].stock", problem: "must be >= 0 (got -5)"),
        .init(
            "quoted price",
            secretsYAML + "events:\n" + event(items: "      - { sku: A1, name: Case, price: \"990\", stock: 1 }"),
            key: "events[0].items[0].price", problem: "expected an integer, got a quoted string"),
        .init(
            "price is a word",
            secretsYAML + "events:\n" + event(items: "      - { sku: A1, name: Case, price: cheap, stock: 1 }"),
            key: "events[0].items[0].price", problem: "expected an integer (got \"cheap\")"),
        .init(
            "negative price",
            secretsYAML + "events:\n" + event(items: "      - { sku: A1, name: Case, price: -1, stock: 1 }"),
            key: "events[0].items[0].price", problem: "must be >= 0"),
        .init(
            "missing stock", secretsYAML + "events:\n" + event(items: "      - { sku: A1, name: Case, price: 1 }"),
            key: "events[0].items[0].stock", problem: "required key is missing"),
        .init(
            "empty name",
            secretsYAML + "events:\n" + event(items: "      - { sku: A1, name: \"\", price: 1, stock: 1 }"),
            key: "events[0].items[0].name", problem: "must not be empty"),
        .init(
            "limit_per_user zero",
            secretsYAML + "events:\n"
                + event(items: "      - { sku: A1, name: Case, price: 1, stock: 1, limit_per_user: 0 }"),
            key: "events[0].items[0].limit_per_user", problem: "must be >= 1 (got 0)"),
        .init(
            "bad sku",
            secretsYAML + "events:\n" + event(items: "      - { sku: \"A 1\", name: Case, price: 1, stock: 1 }"),
            key: "events[0].items[0].sku", problem: "must match [A-Za-z0-9._-]{1,64}"),
        .init(
            "duplicate sku", secretsYAML + "events:\n" + event(items: goodItem + "\n" + goodItem),
            key: "events[0].items[1].sku", problem: "duplicate sku 'A1'"),
        .init(
            "no items", secretsYAML + "events:\n" + event(items: "      []"),
            key: "events[0].items", problem: "at least one item"),
        .init(
            "group fields on a seckill item", secretsYAML + "events:\n" + event(items: goodGroupItem),
            key: "events[0].items[0].group_size", problem: "only items of groupbuy events"),
        .init(
            "group item without group_size", secretsYAML + "events:\n" + event(kind: "groupbuy", items: goodItem),
            key: "events[0].items[0].group_size", problem: "required key is missing"),
        .init(
            "group_size over 50",
            secretsYAML + "events:\n"
                + event(
                    kind: "groupbuy",
                    items: "      - { sku: G1, name: Tea, price: 1, stock: 1, group_size: 51, group_price: 1 }"),
            key: "events[0].items[0].group_size", problem: "must be <= 50 (got 51)"),
        .init(
            "group_size of one",
            secretsYAML + "events:\n"
                + event(
                    kind: "groupbuy",
                    items: "      - { sku: G1, name: Tea, price: 1, stock: 1, group_size: 1, group_price: 1 }"),
            key: "events[0].items[0].group_size", problem: "must be >= 2 (got 1)"),
        .init(
            "group item without group_price",
            secretsYAML + "events:\n"
                + event(kind: "groupbuy", items: "      - { sku: G1, name: Tea, price: 1, stock: 1, group_size: 3 }"),
            key: "events[0].items[0].group_price", problem: "required key is missing"),
        // Events.
        .init(
            "duplicate event id", secretsYAML + "events:\n" + event(items: goodItem) + event(items: goodItem),
            key: "events[1].id", problem: "duplicate event id 'e1' (also events[0].id)"),
        .init(
            "bad event id", secretsYAML + "events:\n" + event(id: "\"sale #1\"", items: goodItem),
            key: "events[0].id", problem: "must match"),
        .init(
            "event id too long",
            secretsYAML + "events:\n" + event(id: String(repeating: "x", count: 65), items: goodItem),
            key: "events[0].id", problem: "must match"),
        .init(
            "bad kind", secretsYAML + "events:\n" + event(kind: "auction", items: goodItem),
            key: "events[0].kind", problem: "expected seckill or groupbuy (got \"auction\")"),
        .init(
            "ends before it starts",
            secretsYAML + "events:\n"
                + event(
                    window: "    starts_at: 2026-11-25T12:00:00Z\n    ends_at: 2026-11-25T20:00:00+08:00",
                    items: goodItem),
            key: "events[0].ends_at", problem: "must be after starts_at"),
        .init(
            "time without offset",
            secretsYAML + "events:\n"
                + event(window: "    starts_at: 2026-11-25T12:00:00\n    ends_at: now+1h", items: goodItem),
            key: "events[0].starts_at", problem: "expected an RFC 3339 time"),
        .init(
            "no window", secretsYAML + "events:\n" + event(window: "", items: goodItem),
            key: "events[0].starts_at", problem: "required key is missing"),
        .init(
            "schedule and window",
            secretsYAML + "events:\n"
                + event(
                    window:
                        "    starts_at: now\n    ends_at: now+1h\n    schedule: { days: [wed], at: \"20:00\", duration: 1h }",
                    items: goodItem),
            key: "events[0].schedule", problem: "not both"),
        .init(
            "bad schedule day",
            secretsYAML + "events:\n"
                + event(window: "    schedule: { days: [wed, frday], at: \"20:00\", duration: 1h }", items: goodItem),
            key: "events[0].schedule.days[1]", problem: "expected a day"),
        .init(
            "no schedule days",
            secretsYAML + "events:\n"
                + event(window: "    schedule: { days: [], at: \"20:00\", duration: 1h }", items: goodItem),
            key: "events[0].schedule.days", problem: "at least one day"),
        .init(
            "bad schedule time",
            secretsYAML + "events:\n"
                + event(window: "    schedule: { days: [wed], at: \"24:00\", duration: 1h }", items: goodItem),
            key: "events[0].schedule.at", problem: "expected a time of day HH:MM"),
        .init(
            "schedule duration without unit",
            secretsYAML + "events:\n"
                + event(window: "    schedule: { days: [wed], at: \"20:00\", duration: 3600 }", items: goodItem),
            key: "events[0].schedule.duration", problem: "expected a duration like 15m"),
        .init(
            "schedule longer than a week",
            secretsYAML + "events:\n"
                + event(window: "    schedule: { days: [wed], at: \"20:00\", duration: 8d }", items: goodItem),
            key: "events[0].schedule.duration", problem: "must be at most 7d"),
        .init(
            "scheduled id too long for its date",
            secretsYAML + "events:\n"
                + event(
                    id: String(repeating: "x", count: 60),
                    window: "    schedule: { days: [wed], at: \"20:00\", duration: 1h }", items: goodItem),
            key: "events[0].id", problem: "too long for a schedule"),
        .init(
            "events is a mapping", secretsYAML + "events: { id: e1 }\n",
            key: "events", problem: "expected a list, got a mapping"),
        // Coupons.
        .init(
            "duplicate coupon id", secretsYAML + "coupons:\n" + coupon() + coupon(),
            key: "coupons[1].id", problem: "duplicate coupon batch id 'c1'"),
        .init(
            "coupon value zero",
            secretsYAML + "coupons:\n" + "  - { id: c1, total: 10, value: 0, starts_at: now, ends_at: now+1h }\n",
            key: "coupons[0].value", problem: "must be >= 1 (got 0)"),
        .init(
            "coupon total negative",
            secretsYAML + "coupons:\n" + "  - { id: c1, total: -1, value: 5, starts_at: now, ends_at: now+1h }\n",
            key: "coupons[0].total", problem: "must be >= 0"),
        .init(
            "coupon min_spend negative", secretsYAML + "coupons:\n" + coupon(", min_spend: -100"),
            key: "coupons[0].min_spend", problem: "must be >= 0"),
        .init(
            "coupon per_user zero", secretsYAML + "coupons:\n" + coupon(", per_user: 0"),
            key: "coupons[0].per_user", problem: "must be >= 1"),
        .init(
            "coupon per_ip zero", secretsYAML + "coupons:\n" + coupon(", per_ip: 0"),
            key: "coupons[0].per_ip", problem: "must be >= 1"),
        .init(
            "coupon valid_for in words", secretsYAML + "coupons:\n" + coupon(", valid_for: 1 day"),
            key: "coupons[0].valid_for", problem: "expected a duration like 15m"),
        .init(
            "coupon ends before it starts",
            secretsYAML + "coupons:\n" + coupon(window: "starts_at: now, ends_at: now-1h"),
            key: "coupons[0].ends_at", problem: "must be after starts_at"),
        .init(
            "coupon relative time typo", secretsYAML + "coupons:\n" + coupon(window: "starts_at: now, ends_at: now+1"),
            key: "coupons[0].ends_at", problem: "expected an RFC 3339 time"),
        // Top-level settings.
        .init("no secrets", "http: 127.0.0.1:8080\n", key: "secrets.user_token", problem: "required key is missing"),
        .init(
            "missing ops secret", "secrets: { user_token: a, payment: b }\n",
            key: "secrets.ops", problem: "required key is missing"),
        .init(
            "empty payment secret", "secrets: { user_token: a, payment: \"\", ops: c }\n",
            key: "secrets.payment", problem: "must not be empty"),
        .init("secrets is a word", "secrets: hunter2\n", key: "secrets", problem: "expected a mapping of keys"),
        .init("http without port", secretsYAML + "http: localhost\n", key: "http", problem: "expected host:port"),
        .init("http port too big", secretsYAML + "http: 127.0.0.1:65536\n", key: "http", problem: "expected host:port"),
        .init("ops IPv6 without brackets", secretsYAML + "ops: ::1:7070\n", key: "ops", problem: "expected host:port"),
        .init(
            "http is a mapping", secretsYAML + "http: { host: x, port: 1 }\n", key: "http",
            problem: "expected a single value, got a mapping"),
        .init("data empty", secretsYAML + "data: \"\"\n", key: "data", problem: "must not be empty"),
        .init(
            "unknown timezone", secretsYAML + "timezone: Mars/Olympus_Mons\n", key: "timezone",
            problem: "not a known time zone"),
        .init(
            "bad trusted proxy", secretsYAML + "trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]\n",
            key: "trusted_proxies[1]", problem: "expected a CIDR"),
        .init(
            "trusted proxy hostname", secretsYAML + "trusted_proxies: [proxy.local]\n", key: "trusted_proxies[0]",
            problem: "expected a CIDR"),
        .init(
            "rate zero", secretsYAML + "rate_limit: { per_ip: { rate: 0 } }\n", key: "rate_limit.per_ip.rate",
            problem: "must be > 0"),
        .init(
            "rate a word", secretsYAML + "rate_limit: { per_ip: { rate: fast } }\n", key: "rate_limit.per_ip.rate",
            problem: "expected a number"),
        .init(
            "burst zero", secretsYAML + "rate_limit: { per_ip: { burst: 0 } }\n", key: "rate_limit.per_ip.burst",
            problem: "must be >= 1"),
        .init(
            "max_inflight zero", secretsYAML + "admission: { max_inflight: 0 }\n", key: "admission.max_inflight",
            problem: "must be >= 1"),
        .init(
            "payment window bare number", secretsYAML + "payment: { window: 900 }\n", key: "payment.window",
            problem: "expected a duration like 15m"),
        .init(
            "payment window zero", secretsYAML + "payment: { window: 0s }\n", key: "payment.window",
            problem: "must be > 0"),
        .init(
            "group window negative", secretsYAML + "group: { window: -1h }\n", key: "group.window",
            problem: "expected a duration"),
        .init(
            "shards zero", secretsYAML + "engine: { shards: 0 }\n", key: "engine.shards",
            problem: "must be >= 1 (got 0)"),
        .init(
            "shards too many", secretsYAML + "engine: { shards: 2048 }\n", key: "engine.shards",
            problem: "must be <= 1024 (got 2048)"),
        .init(
            "journal enabled yes", secretsYAML + "journal: { enabled: yes }\n", key: "journal.enabled",
            problem: "expected true or false"),
        .init(
            "journal synchronous off", secretsYAML + "journal: { synchronous: off }\n", key: "journal.synchronous",
            problem: "expected full or normal"),
        .init(
            "journal batch too big", secretsYAML + "journal: { batch_max: 70000 }\n", key: "journal.batch_max",
            problem: "must be <= 65536"),
        .init(
            "checkpoint interval bare number", secretsYAML + "journal: { checkpoint_interval: 30 }\n",
            key: "journal.checkpoint_interval", problem: "expected a duration"),
        // Unknown keys, at every level.
        .init(
            "unknown top-level key", secretsYAML + "rate_limt: { per_ip: { rate: 5 } }\n", key: "rate_limt",
            problem: "unknown key (did you mean 'rate_limit'?)"),
        .init("unrelated top-level key", secretsYAML + "colour: blue\n", key: "colour", problem: "unknown key"),
        .init(
            "typo inside secrets", "secrets: { user_tokn: a, payment: b, ops: c }\n", key: "secrets.user_tokn",
            problem: "unknown key"),
        .init(
            "typo two levels down", secretsYAML + "rate_limit: { per_ip: { brust: 5 } }\n",
            key: "rate_limit.per_ip.brust",
            problem: "did you mean 'burst'?"),
        .init(
            "typo in an item",
            secretsYAML + "events:\n"
                + event(items: "      - { sku: A1, name: Case, price: 1, stock: 1, limit_per_usr: 2 }"),
            key: "events[0].items[0].limit_per_usr", problem: "did you mean 'limit_per_user'?"),
        .init(
            "typo in an event",
            secretsYAML + "events:\n" + event(window: "    starts_at: now\n    end_at: now+1h", items: goodItem),
            key: "events[0].end_at", problem: "unknown key"),
        .init(
            "typo in a schedule",
            secretsYAML + "events:\n"
                + event(window: "    schedule: { days: [wed], at: \"20:00\", durration: 1h }", items: goodItem),
            key: "events[0].schedule.durration", problem: "unknown key"),
        .init(
            "typo in a coupon", secretsYAML + "coupons:\n" + coupon(", per_usr: 2"), key: "coupons[0].per_usr",
            problem: "unknown key"),
        // The document as a whole.
        .init("document is a list", "- a\n- b\n", key: "", problem: "expected a mapping of keys"),
        .init(
            "duplicate YAML key", secretsYAML + "http: 127.0.0.1:1\nhttp: 127.0.0.1:2\n", key: "",
            problem: "duplicate key 'http'"),
        .init("YAML syntax error", secretsYAML + "http: [127.0.0.1:1\n", key: "", problem: "invalid YAML at line"),
        .init("control character", secretsYAML + "data: a\u{07}b\n", key: "", problem: "invalid YAML at character"),
    ]

    @Suite struct ConfigValidationTests {
        @Test(arguments: badConfigRows)
        func badConfigIsRefusedNamingTheKey(_ row: BadConfigRow) {
            let error = parseError(row.yaml)
            #expect(error?.source == "test.yaml")
            #expect(error?.key == row.key)
            #expect(error?.problem.contains(row.problem) == true, "problem was: \(error?.problem ?? "none")")
        }

        @Test func descriptionIsSourceKeyProblem() {
            let error = parseError(
                secretsYAML + "events:\n" + event(items: goodItem)
                    + event(id: "e2", items: "      - { sku: A1, name: Case, price: 990, stock: -5 }"))
            #expect(error?.description == "test.yaml: events[1].items[0].stock: must be >= 0 (got -5)")
        }

        @Test func syntaxErrorNamesTheFileLineAndColumn() {
            let error = parseError("secrets:\n  user_token: a\n  payment: [b\n  ops: c\n")
            #expect(error?.key == "")
            #expect(
                error?.description.hasPrefix("test.yaml: invalid YAML at line ") == true, "\(String(describing: error))"
            )
            #expect(error?.problem.contains("column") == true)
        }

        @Test func theSmallestValidConfigGetsEveryDefault() throws {
            let config = try parse(secretsYAML)
            #expect(config.http == HostPort(host: "127.0.0.1", port: 8080))
            #expect(config.ops == HostPort(host: "127.0.0.1", port: 7070))
            #expect(config.dataDirectory == "./data")
            #expect(config.timeZoneIdentifier == "Asia/Shanghai")
            #expect(config.trustedProxies == [])
            #expect(config.rateLimitPerIPRate == 20 && config.rateLimitPerIPBurst == 40)
            #expect(config.admissionMaxInflight == 4096)
            #expect(config.paymentWindowMs == 15 * 60_000 && config.groupWindowMs == 24 * hourMs)
            #expect(config.shards == 16)
            #expect(config.journal == SaleConfig.defaultJournal)
            #expect(config.events.isEmpty && config.coupons.isEmpty)
        }

        @Test func itemAndCouponDefaultsApply() throws {
            let config = try parse(secretsYAML + "events:\n" + event(items: goodItem) + "coupons:\n" + coupon())
            #expect(config.events.first?.items.first?.limitPerUser == 1)
            #expect(config.events.first?.items.first?.groupSize == nil)
            #expect(
                config.coupons == [
                    CouponBatchConfig(
                        id: "c1", total: 10, valueFen: 500, minSpendFen: 0, perUser: 1, perIP: 3,
                        startsAtMs: wednesdayMs,
                        endsAtMs: wednesdayMs + hourMs, validForMs: 24 * hourMs)
                ])
        }

        @Test func timesWithOffsetsAndFractionsAreExact() throws {
            let config = try parse(
                secretsYAML + "events:\n"
                    + event(
                        window: "    starts_at: 2026-11-25T20:00:00+08:00\n    ends_at: 2026-11-25T12:30:00.250Z",
                        items: goodItem))
            #expect(config.events.first?.startsAtMs == utcMs(2026, 11, 25, 12))
            #expect(config.events.first?.endsAtMs == utcMs(2026, 11, 25, 12, 30) + 250)
        }

        @Test func allSettingsAreRead() throws {
            let config = try parse(
                secretsYAML + """
                    http: "[::1]:0"
                    ops: 0.0.0.0:7171
                    data: /var/lib/flashsale
                    timezone: Europe/Berlin
                    trusted_proxies: [10.0.0.0/8, "fd00::/8", 192.168.1.10]
                    rate_limit: { per_ip: { rate: 2.5, burst: 5 } }
                    admission: { max_inflight: 100 }
                    payment: { window: 1h30m }
                    group: { window: 2h }
                    engine: { shards: 4 }
                    journal: { enabled: false, synchronous: NORMAL, batch_max: 16, checkpoint_interval: 500ms }
                    """)
            #expect(config.http == HostPort(host: "::1", port: 0))
            #expect(config.ops == HostPort(host: "0.0.0.0", port: 7171))
            #expect(config.dataDirectory == "/var/lib/flashsale")
            #expect(config.timeZoneIdentifier == "Europe/Berlin")
            #expect(config.trustedProxies == ["10.0.0.0/8", "fd00::/8", "192.168.1.10/32"])
            #expect(config.rateLimitPerIPRate == 2.5 && config.rateLimitPerIPBurst == 5)
            #expect(config.admissionMaxInflight == 100)
            #expect(config.paymentWindowMs == 90 * 60_000 && config.groupWindowMs == 2 * hourMs)
            #expect(config.shards == 4)
            #expect(
                config.journal
                    == JournalConfig(enabled: false, synchronous: .normal, batchMax: 16, checkpointIntervalMs: 500))
        }
    }

    // MARK: - Loading files

    @Suite struct ConfigFileTests {
        @Test func aMissingFileIsAnErrorNamingIt() {
            let path = "/nonexistent/flashsale-\(UUID().uuidString).yaml"
            #expect(throws: ConfigError(source: path, key: "", problem: "cannot read the config file: no such file")) {
                try SaleConfig.load(path: path, environment: [:], nowMs: wednesdayMs)
            }
        }

        @Test func aDirectoryIsNotAConfigFile() throws {
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let error = #expect(throws: ConfigError.self) {
                try SaleConfig.load(path: directory.path, environment: [:], nowMs: wednesdayMs)
            }
            #expect(error?.problem.contains("directory") == true)
        }

        @Test func aFileWithASyntaxErrorNamesItsPathAndLine() throws {
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = directory.appendingPathComponent("broken.yaml").path
            try "secrets:\n  user_token: a\n\tpayment: b\n".write(toFile: path, atomically: true, encoding: .utf8)
            let error = #expect(throws: ConfigError.self) {
                try SaleConfig.load(path: path, environment: [:], nowMs: wednesdayMs)
            }
            #expect(error?.source == path)
            #expect(
                error?.description.hasPrefix("\(path): invalid YAML at line 3, column") == true,
                "\(String(describing: error))")
        }
    }

    // MARK: - Environment overrides

    @Suite struct EnvironmentOverrideTests {
        private let fileYAML = """
            http: 127.0.0.1:8080
            ops: 127.0.0.1:7070
            data: ./data
            timezone: Asia/Shanghai
            secrets: { user_token: file-user-token-secret, payment: file-payment-secret, ops: file-ops-password }
            trusted_proxies: [10.0.0.0/8]
            rate_limit: { per_ip: { rate: 20, burst: 40 } }
            admission: { max_inflight: 4096 }
            payment: { window: 15m }
            group: { window: 24h }
            engine: { shards: 16 }
            journal: { enabled: true, synchronous: full, batch_max: 4096, checkpoint_interval: 30s }
            """

        @Test func everyOverrideBeatsTheFile() throws {
            let environment = [
                "FLASHSALE_HTTP": "0.0.0.0:9000",
                "FLASHSALE_OPS": "[::1]:9001",
                "FLASHSALE_METRICS": "127.0.0.1:9464",
                "FLASHSALE_DATA": "/tmp/fs",
                "FLASHSALE_TIMEZONE": "UTC",
                "FLASHSALE_SECRETS_USER_TOKEN": "env-user-token-secret",
                "FLASHSALE_SECRETS_PAYMENT": "env-payment-secret",
                "FLASHSALE_SECRETS_OPS": "env-ops-password",
                "FLASHSALE_SECRETS_ADMIN": "env-admin-token-0123",
                "FLASHSALE_CHANGES_RETENTION": "30d",
                "FLASHSALE_MEMORY_RETENTION": "3d",
                "FLASHSALE_TRUSTED_PROXIES": "192.168.0.0/16, ::1 ,",
                "FLASHSALE_RATE_LIMIT_PER_IP_RATE": "0.5",
                "FLASHSALE_RATE_LIMIT_PER_IP_BURST": "2",
                "FLASHSALE_ADMISSION_MAX_INFLIGHT": "10",
                "FLASHSALE_PAYMENT_WINDOW": "2s",
                "FLASHSALE_GROUP_WINDOW": "5m",
                "FLASHSALE_ENGINE_SHARDS": "3",
                "FLASHSALE_JOURNAL_ENABLED": "false",
                "FLASHSALE_JOURNAL_SYNCHRONOUS": "normal",
                "FLASHSALE_JOURNAL_BATCH_MAX": "7",
                "FLASHSALE_JOURNAL_CHECKPOINT_INTERVAL": "1m",
            ]
            #expect(Set(environment.keys) == Set(SaleConfig.environmentOverrides))
            let config = try parse(fileYAML, environment: environment)
            #expect(config.http == HostPort(host: "0.0.0.0", port: 9000))
            #expect(config.ops == HostPort(host: "::1", port: 9001))
            #expect(config.metricsListener == HostPort(host: "127.0.0.1", port: 9464))
            #expect(config.dataDirectory == "/tmp/fs")
            #expect(config.timeZoneIdentifier == "UTC")
            #expect(config.secrets == Secrets(
                userToken: "env-user-token-secret", payment: "env-payment-secret", ops: "env-ops-password", admin: "env-admin-token-0123"))
            #expect(config.feed.retentionMs == 30 * 86_400_000)
            #expect(config.memoryRetentionMs == 3 * 86_400_000)
            #expect(config.trustedProxies == ["192.168.0.0/16", "::1/128"])
            #expect(config.rateLimitPerIPRate == 0.5 && config.rateLimitPerIPBurst == 2)
            #expect(config.admissionMaxInflight == 10)
            #expect(config.paymentWindowMs == 2000 && config.groupWindowMs == 5 * 60_000)
            #expect(config.shards == 3)
            #expect(
                config.journal
                    == JournalConfig(enabled: false, synchronous: .normal, batchMax: 7, checkpointIntervalMs: 60_000))
        }

        @Test func withoutOverridesTheFileValuesStand() throws {
            let config = try parse(fileYAML)
            #expect(config.metricsListener == nil, "the scrape stays on the buyer port unless asked")
            #expect(try parse("metrics: 127.0.0.1:9464\n" + fileYAML).metricsListener == HostPort(host: "127.0.0.1", port: 9464))
            #expect(ConfigTests.parseError("metrics: 9464\n" + fileYAML)?.description.contains("metrics") == true)
            #expect(config.secrets == Secrets(userToken: "file-user-token-secret", payment: "file-payment-secret", ops: "file-ops-password"))
            #expect(config.trustedProxies == ["10.0.0.0/8"])
        }

        @Test func overridesFillKeysTheFileLeavesOut() throws {
            let config = try parse(
                "",
                environment: [
                    "FLASHSALE_SECRETS_USER_TOKEN": "env-user-token-secret", "FLASHSALE_SECRETS_PAYMENT": "env-payment-secret",
                    "FLASHSALE_SECRETS_OPS": "env-ops-password",
                ])
            #expect(config.secrets == Secrets(userToken: "env-user-token-secret", payment: "env-payment-secret", ops: "env-ops-password"))
        }

        @Test func anOverrideReplacesABadFileValue() throws {
            let config = try parse(
                secretsYAML + "engine: { shards: 0 }\n", environment: ["FLASHSALE_ENGINE_SHARDS": "8"])
            #expect(config.shards == 8)
        }

        @Test func anEmptyTrustedProxiesOverrideClearsTheList() throws {
            let config = try parse(fileYAML, environment: ["FLASHSALE_TRUSTED_PROXIES": ""])
            #expect(config.trustedProxies == [])
        }

        @Test func otherFlashsaleVariablesAreIgnored() throws {
            let config = try parse(
                fileYAML,
                environment: ["FLASHSALE_CONFIG": "/etc/x.yaml", "FLASHSALE_NOT_A_KEY": "?", "FLASHSALE_EVENTS": "x"])
            #expect(config.shards == 16)
        }

        @Test(arguments: [
            ("FLASHSALE_ENGINE_SHARDS", "sixteen", "expected an integer"),
            ("FLASHSALE_ENGINE_SHARDS", "0", "must be >= 1"),
            ("FLASHSALE_HTTP", "8080", "expected host:port"),
            ("FLASHSALE_PAYMENT_WINDOW", "900", "expected a duration like 15m"),
            ("FLASHSALE_JOURNAL_ENABLED", "maybe", "expected true or false"),
            ("FLASHSALE_JOURNAL_SYNCHRONOUS", "fast", "expected full or normal"),
            ("FLASHSALE_RATE_LIMIT_PER_IP_RATE", "-1", "must be > 0"),
            ("FLASHSALE_TIMEZONE", "Nowhere/City", "not a known time zone"),
            ("FLASHSALE_SECRETS_OPS", "", "must not be empty"),
            ("FLASHSALE_TRUSTED_PROXIES", "10.0.0.0/8,bogus", "expected a CIDR"),
        ])
        func aBadOverrideNamesTheVariable(variable: String, value: String, problem: String) {
            let error = parseError(fileYAML, environment: [variable: value])
            #expect(error?.source == "environment")
            #expect(error?.key == variable)
            #expect(error?.problem.contains(problem) == true, "problem was: \(error?.problem ?? "none")")
        }

        @Test func listElementsHaveNoOverrides() throws {
            let config = try parse(
                secretsYAML + "events:\n" + event(items: goodItem), environment: ["FLASHSALE_EVENTS_0_ID": "other"])
            #expect(config.events.map(\.id) == ["e1"])
        }
    }

    // MARK: - Syntax of single values

    @Suite struct ValueSyntaxTests {
        @Test(
            arguments: [
                ("15m", 900_000), ("2s", 2000), ("500ms", 500), ("1h30m", 5_400_000), ("24h", 86_400_000),
                ("7d", 604_800_000), ("1d2h3m4s5ms", 93_784_005), ("0s", 0),
            ] as [(String, Int64)])
        func durationsParse(text: String, milliseconds: Int64) {
            #expect(Duration.parseMilliseconds(text) == milliseconds)
            #expect(Duration(parsing: text) == .milliseconds(milliseconds))
        }

        @Test(arguments: [
            "900", "15", "", "m", "-5m", "1.5h", "30m1h", "1m30m", "15 m", "15M", "2w", "h1", "99999999999999d",
        ])
        func nonDurationsAreRefused(text: String) {
            #expect(Duration.parseMilliseconds(text) == nil)
        }

        @Test func durationsPrintInTheirShortestForm() {
            #expect(Duration.configText(milliseconds: 5_400_000) == "1h30m")
            #expect(Duration.configText(milliseconds: 7 * dayMs) == "7d")
            #expect(Duration.configText(milliseconds: 1500) == "1s500ms")
            #expect(Duration.configText(milliseconds: 0) == "0s")
        }

        @Test(arguments: [
            ("2026-11-25T12:00:00Z", utcMs(2026, 11, 25, 12)),
            ("2026-11-25t12:00:00z", utcMs(2026, 11, 25, 12)),
            ("2026-11-25 20:00:00+08:00", utcMs(2026, 11, 25, 12)),
            ("2026-11-25T07:00:00-05:00", utcMs(2026, 11, 25, 12)),
            ("2026-11-25T12:00:00.1Z", utcMs(2026, 11, 25, 12) + 100),
            ("2026-11-25T12:00:00.123456789Z", utcMs(2026, 11, 25, 12) + 123),
            ("2028-02-29T00:00:00Z", utcMs(2028, 2, 29)),
            ("1969-12-31T23:59:59Z", -1000),
        ])
        func rfc3339TimesParse(text: String, milliseconds: Int64) {
            #expect(RFC3339.milliseconds(text) == milliseconds)
        }

        @Test(arguments: [
            "2026-11-25", "2026-11-25T12:00:00", "2026-11-25T24:00:00Z", "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
            "2026-11-25T12:00:60Z", "2026-11-25T12:00:00.Z", "2026-11-25T12:00:00+8:00", "2026-11-25T12:00:00Zjunk",
        ])
        func nonRFC3339TimesAreRefused(text: String) {
            #expect(RFC3339.milliseconds(text) == nil)
        }

        @Test func rfc3339FormatsUTCAndRoundTrips() {
            #expect(RFC3339.format(milliseconds: utcMs(2026, 11, 25, 12)) == "2026-11-25T12:00:00Z")
            #expect(RFC3339.format(milliseconds: utcMs(2026, 11, 25, 12) + 7) == "2026-11-25T12:00:00.007Z")
            #expect(RFC3339.format(milliseconds: -1000) == "1969-12-31T23:59:59Z")
            for ms in [Int64(0), 951_782_400_000, 4_102_444_799_999] {
                #expect(RFC3339.milliseconds(RFC3339.format(milliseconds: ms)) == ms)
            }
        }

        @Test func relativeTimesCountFromTheLoadTime() throws {
            let nowMs = utcMs(2026, 1, 1)
            let config = try parse(
                secretsYAML + "coupons:\n" + coupon(window: "starts_at: now-10m, ends_at: now + 1h30m"), nowMs: nowMs)
            #expect(config.coupons.first?.startsAtMs == nowMs - 600_000)
            #expect(config.coupons.first?.endsAtMs == nowMs + 5_400_000)
        }

        @Test(arguments: [
            ("127.0.0.1:8080", "127.0.0.1", 8080), ("[::1]:8080", "::1", 8080), ("0.0.0.0:0", "0.0.0.0", 0),
            ("localhost:65535", "localhost", 65535), ("[2001:db8::10]:443", "2001:db8::10", 443),
        ])
        func hostPortsParse(text: String, host: String, port: Int) {
            #expect(HostPort(text) == HostPort(host: host, port: port))
            #expect(HostPort(text)?.description == text)
        }

        @Test func aBadFlagAddressNamesTheFlag() throws {
            #expect(try HostPort(parsing: "[::1]:9090", key: "--http") == HostPort(host: "::1", port: 9090))
            let error = #expect(throws: ConfigError.self) { try HostPort(parsing: "localhost", key: "--ops") }
            #expect(
                error?.description
                    == "command line: --ops: expected host:port like 127.0.0.1:8080 or [::1]:8080 (got \"localhost\")")
        }

        @Test(arguments: [
            "127.0.0.1", ":8080", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "::1:8080", "[::1]8080", "[::1]:",
            "256.0.0.1:80", "host name:80", "[not-ip]:80", "1.2.3:80",
        ])
        func nonHostPortsAreRefused(text: String) {
            #expect(HostPort(text) == nil)
        }

        @Test(arguments: [
            ("10.0.0.0/8", "10.0.0.0/8"), ("0.0.0.0/0", "0.0.0.0/0"), ("192.168.1.10", "192.168.1.10/32"),
            ("::1", "::1/128"), ("fd00::/8", "fd00::/8"), ("::/0", "::/0"),
            ("2001:db8:0:0:0:0:0:1/128", "2001:db8:0:0:0:0:0:1/128"),
            ("::ffff:10.0.0.1/120", "::ffff:10.0.0.1/120"),
        ])
        func cidrsAreNormalized(text: String, cidr: String) {
            #expect(IPAddressSyntax.normalizedCIDR(text) == cidr)
        }

        @Test(arguments: [
            "10.0.0.0/33", "10.0.0/8", "010.0.0.0/8", "10.0.0.0/", "10.0.0.0/08", "::/129", "1::2::3", ":1", "1:",
            ":::",
            "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::1", "10.0.0.0/8/8", "",
        ])
        func nonCIDRsAreRefused(text: String) {
            #expect(IPAddressSyntax.normalizedCIDR(text) == nil)
        }

        @Test func ipv6TextFormsGiveTheirBytes() {
            #expect(IPAddressSyntax.ipv6Bytes("::1") == Array(repeating: 0, count: 15) + [1])
            #expect(
                IPAddressSyntax.ipv6Bytes("2001:db8::ff00:42:8329") == [
                    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29,
                ])
            #expect(
                IPAddressSyntax.ipv6Bytes("::ffff:10.0.0.1") == Array(repeating: 0, count: 10) + [
                    0xff, 0xff, 10, 0, 0, 1,
                ])
        }
    }
}

/// §5: every secret at least 16 bytes; the public demo secrets only on loopback.
@Suite struct SecretRuleTests {
    @Test(arguments: ["user_token", "payment", "ops"])
    func aShortSecretIsAConfigErrorNamingItsKey(key: String) throws {
        var secrets = ["user_token": "user-token-secret-0", "payment": "payment-secret-000", "ops": "ops-password-0000"]
        secrets[key] = "fifteen-bytes-x"
        let yaml = "secrets:\n" + secrets.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)\n" }.joined()
        let error = try #require(ConfigTests.parseError(yaml))
        #expect(error.key == "secrets.\(key)")
        #expect(error.problem.contains("at least 16 bytes"), "\(error)")
    }

    @Test func theDemoSecretsServeOnlyOnLoopback() throws {
        var demo = try SaleConfig.load(path: nil, environment: [:], nowMs: ConfigTests.wednesdayMs)
        #expect(demo.publicSecretsRefusal == nil, "the demo on its default loopback listeners")
        demo.ops = HostPort(host: "::1", port: 7070)
        #expect(demo.publicSecretsRefusal == nil)
        demo.http = HostPort(host: "0.0.0.0", port: 8080)
        let refusal = try #require(demo.publicSecretsRefusal)
        #expect(refusal.contains("0.0.0.0:8080") && refusal.contains("secrets.user_token") && refusal.contains("FLASHSALE_SECRETS_OPS"))
        let own = try SaleConfig.load(
            path: nil,
            environment: [
                "FLASHSALE_SECRETS_USER_TOKEN": "own-user-token-secret", "FLASHSALE_SECRETS_PAYMENT": "own-payment-secret",
                "FLASHSALE_SECRETS_OPS": "own-ops-password-0", "FLASHSALE_SECRETS_ADMIN": "own-admin-token-0123",
            ], nowMs: ConfigTests.wednesdayMs)
        var exposed = own
        exposed.http = HostPort(host: "0.0.0.0", port: 8080)
        #expect(exposed.publicSecretsRefusal == nil, "own secrets may listen anywhere")
    }
}
