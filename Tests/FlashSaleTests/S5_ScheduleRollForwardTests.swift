import FlashSaleTestKit
import Foundation
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import InventoryActor

/// Recurring schedules keep producing events for as long as the daemon runs (§5):
/// driven by the injected clock across months, in Asia/Shanghai and in a time zone that
/// observes daylight saving.
@Suite struct ScheduleRollForwardTests {
    static func config(directory: TemporaryDirectory, timezone: String, nowMs: Int64) throws -> SaleConfig {
        try SaleConfig.parse(
            yaml: TestSecrets.configHeaderYAML + """
                timezone: \(timezone)
                data: \(directory.path)
                journal: { synchronous: normal }
                events:
                  - id: wk
                    kind: seckill
                    schedule: { days: [wed, fri], at: "20:00", duration: 2h, horizon: 14d }
                    items: [{ sku: S1, name: Cooker, price: 100, stock: 5 }]
                """, sourceName: "test.yaml", environment: [:], nowMs: nowMs)
    }

    /// The local wall-clock hour and minute of `ms` in `timezone`, and its weekday (1 is Sunday).
    static func local(_ ms: Int64, _ timezone: String) -> (hour: Int, minute: Int, weekday: Int) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timezone)!
        let parts = calendar.dateComponents([.hour, .minute, .weekday], from: Date(timeIntervalSince1970: Double(ms) / 1000))
        return (parts.hour!, parts.minute!, parts.weekday!)
    }

    @Test(arguments: [
        // Shanghai has no daylight saving; New York leaves it on 2026-11-01 and enters it on 2027-03-14.
        ("Asia/Shanghai", ConfigTests.utcMs(2026, 10, 1, 0)),
        ("America/New_York", ConfigTests.utcMs(2026, 10, 1, 0)),
        ("America/New_York", ConfigTests.utcMs(2027, 1, 10, 0)),
    ])
    func everyWednesdayAndFridayStaysScheduledForNinetyDays(timezone: String, startMs: Int64) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = ManualClock(startMs: startMs)
        let config = try Self.config(directory: directory, timezone: timezone, nowMs: startMs)
        let world = try await TestEngine.start(config: config, clock: clock)
        let dayMs: Int64 = 86_400_000
        var seen: Set<String> = Set(world.engine.catalog.events.map(\.config.id))
        for _ in 1...(90 * 24) {
            clock.advance(ms: 3_600_000)
            await world.engine.rollSchedules()
            let nowMs = clock.nowMs()
            let upcoming = world.engine.catalog.events.filter { $0.config.startsAtMs > nowMs }
            // Always at least the next 3 sale days ahead (a 14-day horizon holds 4).
            #expect(upcoming.count >= 3, "at \(nowMs): \(upcoming.map(\.config.id))")
            for event in upcoming where !seen.contains(event.config.id) {
                seen.insert(event.config.id)
                let start = Self.local(event.config.startsAtMs, timezone)
                #expect(start.hour == 20 && start.minute == 0, "\(event.config.id) starts at \(start.hour):\(start.minute) local")
                #expect([4, 6].contains(start.weekday), "\(event.config.id) is on weekday \(start.weekday)")
                #expect(event.config.endsAtMs - event.config.startsAtMs == 2 * 3_600_000)
            }
        }
        // Ninety days hold about 26 Wednesdays and Fridays, each added once, none skipped.
        let days = seen.filter { $0.hasPrefix("wk-") }.sorted()
        #expect(days.count >= 25 + 4, "\(days.count)")
        let starts = world.engine.catalog.events.map(\.config.startsAtMs).sorted()
        for (earlier, later) in zip(starts, starts.dropFirst()) {
            let gap = later - earlier
            // Wed→Fri is 2 days, Fri→Wed 5, give or take the hour daylight saving moves.
            #expect([2 * dayMs, 5 * dayMs].contains { abs($0 - gap) <= 3_600_000 }, "gap \(gap)")
        }
        await world.stop()
    }

    @Test func aRolledForwardSaleTakesOrdersWhenItsWindowOpens() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // Wednesday 2026-11-25 10:00 UTC; two months later the days then are not in the config.
        let startMs = ConfigTests.utcMs(2026, 11, 25, 10)
        let clock = ManualClock(startMs: startMs)
        let world = try await TestEngine.start(config: try Self.config(directory: directory, timezone: "Asia/Shanghai", nowMs: startMs), clock: clock)
        #expect(world.engine.catalog.event("wk-20270127") == nil)
        // Wednesday 2027-01-27, 19:00 Shanghai: rolled in weeks ago, not open yet.
        clock.set(ms: ConfigTests.utcMs(2027, 1, 27, 11))
        await world.engine.rollSchedules()
        #expect(await world.order("u1", sku: "S1", event: "wk-20270127").errorCode == "not_started")
        clock.set(ms: ConfigTests.utcMs(2027, 1, 27, 12, 5))
        let order = await world.order("u1", sku: "S1", event: "wk-20270127")
        #expect(order.status == 201, "\(order.bodyText)")
        let event = await world.respond(to: APIRequest(method: "GET", path: "/v1/events/wk-20270127"))
        #expect(event.json["items"]?[0]?["available"]?.intValue == 4)
        await world.stop()
    }

    @Test func aDaemonStartedAfterASaleWindowDoesNotInventTheMissedSale() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // Wednesday 2026-11-25 22:30 Shanghai: tonight's 20:00-22:00 sale is over.
        let startMs = ConfigTests.utcMs(2026, 11, 25, 14, 30)
        let clock = ManualClock(startMs: startMs)
        let world = try await TestEngine.start(config: try Self.config(directory: directory, timezone: "Asia/Shanghai", nowMs: startMs), clock: clock)
        await world.engine.rollSchedules()
        let missed = try #require(world.engine.catalog.event("wk-20261125"))
        #expect(world.engine.catalog.state(of: missed, nowMs: clock.nowMs()) == .ended, "listed as ended, not moved")
        #expect(missed.config.startsAtMs == ConfigTests.utcMs(2026, 11, 25, 12))
        #expect(await world.order("u1", sku: "S1", event: "wk-20261125").errorCode == "ended")
        let next = world.engine.catalog.events.map(\.config.id).filter { $0 > "wk-20261125" }
        #expect(next.first == "wk-20261127", "the next sale is Friday's, as scheduled")
        await world.stop()
    }
}
