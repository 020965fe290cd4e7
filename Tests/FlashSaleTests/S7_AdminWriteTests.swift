import FlashSaleTestKit
import Foundation
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal
@testable import InventoryActor

/// The admin API's writes (§7): events created live and kept across restarts,
/// checked by the config file's own rules, idempotent, behind the admin token.
@Suite struct AdminWriteTests {
    static let nowMs: Int64 = 1_795_000_000_000

    static func post(_ world: TestEngine, _ path: String, _ body: String, token: String? = TestSecrets.admin, key: String? = nil) async -> APIResponse {
        await world.api.respond(to: APIRequest(
            method: "POST", path: path, authorization: token.map { "Bearer " + $0 }, idempotencyKey: key, body: Array(body.utf8)))
    }

    static let newEvent = #"{"id": "flash-1", "kind": "seckill", "starts_at": "now-1m", "ends_at": "now+2h", "items": [{"sku": "N1", "name": "Kettle", "price": 1990, "stock": 3, "limit_per_user": 1}]}"#

    @Test func anEventCreatedThroughTheAPITakesOrdersAtOnceAndSurvivesARestart() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = ManualClock(startMs: Self.nowMs)
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs)
        var world = try await TestEngine.start(config: config, clock: clock)
        let created = await Self.post(world, "/v1/admin/events", Self.newEvent)
        #expect(created.status == 201, "\(created.bodyText)")
        #expect(created.json["id"]?.stringValue == "flash-1")
        #expect(created.json["state"]?.stringValue == "live")
        #expect(created.json["items"]?[0]?["available"]?.intValue == 3)
        let shown = await world.respond(to: APIRequest(method: "GET", path: "/v1/events/flash-1"))
        #expect(shown.status == 200)
        #expect(shown.json["starts_at"] == created.json["starts_at"] && shown.json["items"] == created.json["items"])
        #expect(await world.respond(to: APIRequest(method: "GET", path: "/v1/events"))
            .json["events"]?.arrayValue?.contains { $0["id"]?.stringValue == "flash-1" } == true)
        let order = await world.order("u1", sku: "N1", event: "flash-1")
        #expect(order.status == 201, "\(order.bodyText)")
        // Its orders reach the change feed (and so the webhooks) like any event's, at once.
        let feed = try await world.engine.changes(after: 0, limit: 100).get()
        #expect(feed.contains { $0.type == "order.created" && String(decoding: $0.data, as: UTF8.self).contains(#""event":"flash-1""#) })
        #expect(await Self.post(world, "/v1/admin/events", Self.newEvent).errorCode == "conflict", "the id is taken")
        #expect(await Self.post(world, "/v1/admin/events", Self.newEvent.replacingOccurrences(of: "flash-1", with: "e1")).errorCode == "conflict",
                "the file's ids too")
        await world.stop()

        // A restart reads it back with its relative times as they were at creation.
        clock.advance(ms: 60_000)
        world = try await TestEngine.start(config: config, clock: clock)
        let again = await world.respond(to: APIRequest(method: "GET", path: "/v1/events/flash-1"))
        #expect(again.status == 200)
        #expect(again.json["starts_at"] == created.json["starts_at"] && again.json["ends_at"] == created.json["ends_at"])
        #expect(again.json["items"]?[0]?["reserved"]?.intValue == 1, "and its order")
        #expect(await world.order("u2", sku: "N1", event: "flash-1").status == 201)
        await world.stop()
    }

    /// Broken `events[]` entries: the admin API refuses each with the file's own message.
    @Test(arguments: [
        #"{"id": "x", "kind": "seckill", "starts_at": "now", "ends_at": "now+1h", "items": [{"sku": "A", "name": "n", "price": -1, "stock": 1}]}"#,
        #"{"id": "x", "kind": "seckill", "starts_at": "now+1h", "ends_at": "now", "items": [{"sku": "A", "name": "n", "price": 1, "stock": 1}]}"#,
        #"{"id": "x", "kind": "seckill", "starts_at": "now", "ends_at": "now+1h", "items": []}"#,
        #"{"id": "x", "kind": "seckill", "starts_at": "now", "ends_at": "now+1h", "items": [{"sku": "A", "name": "n", "price": 1, "stock": 1}, {"sku": "A", "name": "m", "price": 1, "stock": 1}]}"#,
        #"{"id": "x", "kind": "seckill", "starts_at": "now", "ends_at": "now+1h", "itmes": []}"#,
        #"{"id": "x y", "kind": "seckill", "starts_at": "now", "ends_at": "now+1h", "items": [{"sku": "A", "name": "n", "price": 1, "stock": 1}]}"#,
        #"{"id": "x", "kind": "flash", "starts_at": "now", "ends_at": "now+1h", "items": [{"sku": "A", "name": "n", "price": 1, "stock": 1}]}"#,
        #"{"id": "x", "kind": "groupbuy", "starts_at": "now", "ends_at": "now+1h", "items": [{"sku": "A", "name": "n", "price": 1, "stock": 1}]}"#,
        #"{"id": "x", "kind": "seckill", "starts_at": "now", "ends_at": "now+1h", "items": [{"sku": "A", "name": "n", "price": 1, "stock": 1, "limit_per_user": 0}]}"#,
        #"{"id": "x", "kind": "seckill", "schedule": {"days": ["someday"], "at": "20:00", "duration": "1h"}, "items": [{"sku": "A", "name": "n", "price": 1, "stock": 1}]}"#,
        #"{"id": "x", "kind": "seckill", "starts_at": "now", "ends_at": 5, "items": [{"sku": "A", "name": "n", "price": 1, "stock": 1}]}"#,
    ])
    func eachRuleOfTheFileIsRefusedTheSameWay(entry: String) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs), clock: ManualClock(startMs: Self.nowMs))
        let refused = await Self.post(world, "/v1/admin/events", entry)
        // The same entry in a config file.
        var fileError: ConfigError?
        do throws(ConfigError) {
            _ = try SaleConfig.parse(
                yaml: TestSecrets.configHeaderYAML + "events:\n  - " + entry + "\n", sourceName: "f.yaml", environment: [:], nowMs: Self.nowMs)
        } catch { fileError = error }
        let file = try #require(fileError, "the file refuses it too")
        #expect(refused.status == 400 && refused.errorCode == "bad_request")
        let key = file.key.hasPrefix("events[0].") ? String(file.key.dropFirst("events[0].".count)) : ""
        #expect(refused.json["message"]?.stringValue == (key.isEmpty ? file.problem : "\(key): \(file.problem)"), "file: \(file)")
        #expect(world.engine.catalog.event("x") == nil, "nothing was created")
        await world.stop()
    }

    @Test func notJSONNotAnObjectAndNoTokenAreRefused() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs), clock: ManualClock(startMs: Self.nowMs))
        #expect(await Self.post(world, "/v1/admin/events", "id: x\nkind: seckill").errorCode == "bad_request", "YAML is not JSON")
        #expect(await Self.post(world, "/v1/admin/events", #"[{"id": "x"}]"#).errorCode == "bad_request")
        #expect(await Self.post(world, "/v1/admin/events", "").errorCode == "bad_request")
        #expect(await Self.post(world, "/v1/admin/events", Self.newEvent, token: nil).status == 401)
        let buyer = String(world.bearer("u1").dropFirst("Bearer ".count))
        #expect(await Self.post(world, "/v1/admin/events", Self.newEvent, token: buyer).status == 401)
        for path in ["/v1/admin/events/e1/pause", "/v1/admin/events/e1/resume", "/v1/admin/events/e1/items/A1/restock"] {
            #expect(await Self.post(world, path, #"{"delta": 1}"#, token: nil).status == 401, "\(path)")
            #expect(await Self.post(world, path, #"{"delta": 1}"#, token: "wrong-admin-token-0123").status == 401, "\(path)")
        }
        #expect(world.engine.catalog.event("flash-1") == nil)
        await world.stop()
    }

    @Test func aRepeatWithTheSameKeyGetsTheFirstAnswerAndAnotherBodyIs422() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = ManualClock(startMs: Self.nowMs)
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs)
        var world = try await TestEngine.start(config: config, clock: clock)
        let first = await Self.post(world, "/v1/admin/events", Self.newEvent, key: "create-flash-1")
        #expect(first.status == 201)
        let repeated = await Self.post(world, "/v1/admin/events", Self.newEvent, key: "create-flash-1")
        #expect(repeated.status == 201 && repeated.body == first.body, "replayed, not a 409")
        #expect(await Self.post(world, "/v1/admin/events", Self.newEvent + " ", key: "create-flash-1").errorCode == "idempotency_mismatch")
        // A restock replayed does not restock twice, even after a restart.
        let restock = await Self.post(world, "/v1/admin/events/e1/items/A1/restock", #"{"delta": 5}"#, key: "restock-1")
        #expect(restock.status == 200 && restock.json["total"]?.intValue == 15, "\(restock.bodyText)")
        await world.stop()
        world = try await TestEngine.start(config: config, clock: clock)
        let replayed = await Self.post(world, "/v1/admin/events/e1/items/A1/restock", #"{"delta": 5}"#, key: "restock-1")
        #expect(replayed.body == restock.body)
        #expect(await Self.post(world, "/v1/admin/events", Self.newEvent, key: "create-flash-1").body == first.body)
        let event = await world.respond(to: APIRequest(method: "GET", path: "/v1/events/e1"))
        #expect(event.json["items"]?[0]?["total"]?.intValue == 15, "restocked once")
        await world.stop()
    }

    @Test func pauseResumeAndRestockThroughTheAPI() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs), clock: ManualClock(startMs: Self.nowMs))
        let paused = await Self.post(world, "/v1/admin/events/e1/pause", "")
        #expect(paused.status == 200 && paused.json["state"]?.stringValue == "paused", "\(paused.bodyText)")
        #expect(await world.order("u1").errorCode == "paused")
        #expect(await Self.post(world, "/v1/admin/events/e1/resume", "").json["state"]?.stringValue == "live")
        #expect(await world.order("u1").status == 201)
        #expect(await Self.post(world, "/v1/admin/events/nope/pause", "").errorCode == "unknown_event")
        let restocked = await Self.post(world, "/v1/admin/events/e1/items/A1/restock", #"{"delta": -3}"#)
        #expect(restocked.status == 200 && restocked.json["available"]?.intValue == 6, "\(restocked.bodyText)")
        #expect(await Self.post(world, "/v1/admin/events/e1/items/A1/restock", #"{"delta": -100}"#).errorCode == "bad_request",
                "stock never below what is reserved and sold")
        #expect(await Self.post(world, "/v1/admin/events/e1/items/ZZ/restock", #"{"delta": 1}"#).errorCode == "unknown_sku")
        #expect(await Self.post(world, "/v1/admin/events/e1/items/A1/restock", #"{"delta": "5"}"#).errorCode == "bad_request")
        #expect(await Self.post(world, "/v1/admin/events/e1/items/A1/restock", #"{"delta": 0}"#).errorCode == "bad_request")
        #expect(await Self.post(world, "/v1/admin/events/e1/items/A1/restock", #"{"delta": 1, "x": 2}"#).errorCode == "bad_request")
        // Each write is in the audit trail, with its door and result.
        let audit = world.engine.audit.last(100)
        #expect(audit.count == 9 && audit.allSatisfy { $0.door == "admin" })
        #expect(audit.first?.what == "POST /v1/admin/events/{event}/pause e1" && audit.first?.result == "ok")
        #expect(audit[2].what == "POST /v1/admin/events/{event}/pause nope" && audit[2].result == "unknown_event")
        #expect(audit[3].what == "POST /v1/admin/events/{event}/items/{sku}/restock e1 A1")
        await world.stop()
    }

    @Test func anIDInBothTheFileAndTheAdminAPIIsTheFilesErrorAtTheNextStart() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = ManualClock(startMs: Self.nowMs)
        var world = try await TestEngine.start(config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs), clock: clock)
        #expect(await Self.post(world, "/v1/admin/events", Self.newEvent).status == 201)
        await world.stop()
        // The file gains an event with the same id.
        let clash = EventConfig(id: "flash-1", kind: .seckill, startsAtMs: Self.nowMs, endsAtMs: Self.nowMs + 3_600_000, items: makeTestConfig(dataDirectory: "", nowMs: Self.nowMs).events[0].items)
        var config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, events: [clash])
        config.sourceName = "shop.yaml"
        let engine = SaleEngine(config: config, clock: clock, journal: nil, logger: TestEngine.logger)
        let state = try Journal.recover(directory: directory.path)
        guard case .failure(let error) = engine.adminEvents(in: state, configSource: config.sourceName) else {
            Issue.record("the clash was not found")
            return
        }
        #expect(error.source == "shop.yaml")
        #expect(error.problem.contains("'flash-1'") && error.problem.contains("admin API"), "\(error)")
        _ = world
        world = try await TestEngine.start(config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs), clock: clock)
        #expect(world.engine.catalog.event("flash-1") != nil, "without the clash it starts as before")
        await world.stop()
    }
}

/// `PATCH /v1/admin/events/{event}` (§7): names and `ends_at` any time; `starts_at`,
/// prices and `limit_per_user` before the start; checked by the file's rules; kept across restarts.
@Suite struct AdminEditTests {
    static let nowMs: Int64 = 1_795_000_000_000

    static func patch(_ world: TestEngine, _ event: String, _ body: String, key: String? = nil) async -> APIResponse {
        await world.api.respond(to: APIRequest(
            method: "PATCH", path: "/v1/admin/events/\(event)", authorization: "Bearer " + TestSecrets.admin, idempotencyKey: key,
            body: Array(body.utf8)))
    }

    static func config(_ directory: TemporaryDirectory) -> SaleConfig {
        let later = EventConfig(
            id: "later", kind: .seckill, startsAtMs: nowMs + 3_600_000, endsAtMs: nowMs + 7_200_000,
            items: [ItemConfig(sku: "B1", name: "Bowl", priceFen: 500, stock: 10, limitPerUser: 1, groupSize: nil, groupPriceFen: nil)])
        return makeTestConfig(dataDirectory: directory.path, nowMs: nowMs, events: [later])
    }

    @Test func beforeTheStartPricesLimitsAndTimesChangeAndStayAfterARestart() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = ManualClock(startMs: Self.nowMs)
        var world = try await TestEngine.start(config: Self.config(directory), clock: clock)
        let edited = await Self.patch(world, "later", #"{"starts_at": "2026-11-18T12:30:00Z", "items": [{"sku": "B1", "price": 450, "limit_per_user": 2, "name": "Big bowl"}]}"#)
        #expect(edited.status == 200, "\(edited.bodyText)")
        #expect(edited.json["starts_at"]?.stringValue == "2026-11-18T12:30:00Z")
        #expect(edited.json["items"]?[0]?["price"]?.intValue == 450 && edited.json["items"]?[0]?["name"]?.stringValue == "Big bowl")
        await world.stop()
        world = try await TestEngine.start(config: Self.config(directory), clock: clock)
        #expect(await world.respond(to: APIRequest(method: "GET", path: "/v1/events/later")).body == edited.body.replacingServerTime(with: clock), "kept across a restart")
        clock.set(ms: ConfigTests.utcMs(2026, 11, 18, 12, 31))
        let order = await world.order("u1", sku: "B1", qty: 2, event: "later")
        #expect(order.status == 201 && order.json["amount"]?.intValue == 900, "the new price and limit: \(order.bodyText)")
        // Started: prices and limits are fixed now; names and the end still move.
        let refused = await Self.patch(world, "later", #"{"items": [{"sku": "B1", "price": 1}]}"#)
        #expect(refused.errorCode == "bad_request" && refused.json["message"]?.stringValue == "items[0].price: the sale has started: only names and ends_at change now")
        #expect(await Self.patch(world, "later", #"{"starts_at": "2026-11-18T12:00:00Z"}"#).json["message"]?.stringValue?.hasPrefix("starts_at: the sale has started") == true)
        let ended = await Self.patch(world, "later", #"{"ends_at": "2026-11-18T12:32:00Z", "items": [{"sku": "B1", "name": "Last bowl"}]}"#)
        #expect(ended.status == 200 && ended.json["items"]?[0]?["reserved"]?.intValue == 2, "\(ended.bodyText)")
        clock.set(ms: ConfigTests.utcMs(2026, 11, 18, 12, 33))
        #expect(await world.order("u2", sku: "B1", event: "later").errorCode == "ended", "the sale ends at the new end")
        await world.stop()
    }

    @Test func anEventStartedAtAnOddMillisecondStillTakesANameOrEndEdit() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // As `starts_at: now-1m` makes it: a start that is not a whole second.
        let odd = EventConfig(id: "odd", kind: .seckill, startsAtMs: Self.nowMs - 60_123, endsAtMs: Self.nowMs + 3_600_456, items: Self.config(directory).events[1].items)
        let world = try await TestEngine.start(
            config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, events: [odd]), clock: ManualClock(startMs: Self.nowMs))
        let edited = await Self.patch(world, "odd", #"{"items": [{"sku": "B1", "name": "Renamed"}]}"#)
        #expect(edited.status == 200, "\(edited.bodyText)")
        #expect(world.engine.catalog.event("odd")?.config.startsAtMs == odd.startsAtMs)
        #expect(world.engine.catalog.event("odd")?.config.endsAtMs == odd.endsAtMs)
        await world.stop()
    }

    @Test func anEditCheckedAgainstAnOlderEventIsRefusedNotAppliedOverTheNewer() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(config: Self.config(directory), clock: ManualClock(startMs: Self.nowMs))
        // Two edits checked against the same event; the first lands.
        let first = try world.engine.checkEventEdit(id: "later", json: Array(#"{"items": [{"sku": "B1", "price": 400}]}"#.utf8)).get()
        let second = try world.engine.checkEventEdit(id: "later", json: Array(#"{"items": [{"sku": "B1", "name": "Renamed"}]}"#.utf8)).get()
        #expect(try await world.engine.editEvent(first.edited, from: first.base, entry: first.entry, answer: nil).get().items[0].priceFen == 400)
        let stale = await world.engine.editEvent(second.edited, from: second.base, entry: second.entry, answer: nil)
        #expect(stale == .failure(.conflict("the event 'later' was changed meanwhile: read it and send the edit again")))
        #expect(world.engine.catalog.event("later")?.config.items[0].priceFen == 400, "the first edit stands")
        await world.stop()
    }

    @Test(arguments: [
        (#"{"kind": "groupbuy"}"#, "kind: cannot be changed"),
        (#"{"items": [{"sku": "B1", "stock": 99}]}"#, "items[0].stock: cannot be changed (restock instead)"),
        (#"{"items": [{"sku": "ZZ", "price": 1}]}"#, "items[0].sku: no item 'ZZ' in this event"),
        (#"{"ends_at": "2026-11-18T00:00:00Z"}"#, "ends_at: must be after starts_at"),
        (#"{"items": [{"sku": "B1", "price": -5}]}"#, "items[0].price:"),
        (#"[1]"#, "body is not a JSON object"),
    ])
    func anEditOutsideTheRulesIsRefusedNamingTheField(body: String, message: String) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(config: Self.config(directory), clock: ManualClock(startMs: Self.nowMs))
        let refused = await Self.patch(world, "later", body)
        #expect(refused.status == 400 && refused.json["message"]?.stringValue?.hasPrefix(message) == true, "\(refused.bodyText)")
        #expect(world.engine.catalog.event("later")?.config == Self.config(directory).events[1], "nothing changed")
        #expect(await Self.patch(world, "nope", #"{"ends_at": "now+1h"}"#).errorCode == "unknown_event")
        await world.stop()
    }
}

extension Array where Element == UInt8 {
    /// This event body with its `server_time` set to `clock`'s now (the only field that moves).
    func replacingServerTime(with clock: ManualClock) -> [UInt8] {
        let text = String(decoding: self, as: UTF8.self)
        guard let range = text.range(of: #""server_time":"[^"]*""#, options: .regularExpression) else { return self }
        return Array(text.replacingCharacters(in: range, with: #""server_time":"\#(rfc3339(ms: clock.nowMs()))""#).utf8)
    }
}

/// `POST /v1/admin/coupons` (§7): a batch checked by the file's rules, claimable at
/// once, kept across restarts.
@Suite struct AdminCouponTests {
    static let nowMs: Int64 = 1_795_000_000_000
    static let batch = #"{"id": "flash-c", "total": 2, "value": 300, "min_spend": 0, "per_user": 1, "per_ip": 10, "starts_at": "now-1m", "ends_at": "now+1h", "valid_for": "1h"}"#

    static func claim(_ world: TestEngine, _ user: String, batch: String = "flash-c") async -> APIResponse {
        await world.respond(to: APIRequest(method: "POST", path: "/v1/coupons/\(batch)/claims", authorization: world.bearer(user)))
    }

    @Test func aBatchCreatedThroughTheAPIIsClaimableAtOnceAndAfterARestart() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = ManualClock(startMs: Self.nowMs)
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs)
        var world = try await TestEngine.start(config: config, clock: clock)
        #expect(await Self.claim(world, "u1").errorCode == "unknown_batch")
        let created = await AdminWriteTests.post(world, "/v1/admin/coupons", Self.batch, key: "batch-1")
        #expect(created.status == 201 && created.json["id"]?.stringValue == "flash-c" && created.json["valid_for_seconds"]?.intValue == 3_600, "\(created.bodyText)")
        #expect(await AdminWriteTests.post(world, "/v1/admin/coupons", Self.batch, key: "batch-1").body == created.body, "replayed")
        #expect(await AdminWriteTests.post(world, "/v1/admin/coupons", Self.batch).errorCode == "conflict")
        #expect(await Self.claim(world, "u1").status == 201)
        await world.stop()
        world = try await TestEngine.start(config: config, clock: clock)
        #expect(await Self.claim(world, "u1").errorCode == "limit_exceeded", "u1's claim was kept")
        #expect(await Self.claim(world, "u2").status == 201)
        #expect(await Self.claim(world, "u3").errorCode == "exhausted", "total 2")
        await world.stop()
    }

    @Test func theFilesBoundOnBatchesHoldsForTheAPI() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let batches = (0..<ConfigLimits.couponsMax).map { n in
            CouponBatchConfig(
                id: "b\(n)", total: 1, valueFen: 1, minSpendFen: 0, perUser: 1, perIP: 1, startsAtMs: Self.nowMs,
                endsAtMs: Self.nowMs + 60_000, validForMs: 60_000)
        }
        let world = try await TestEngine.start(
            config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, coupons: batches), clock: ManualClock(startMs: Self.nowMs))
        let refused = await AdminWriteTests.post(world, "/v1/admin/coupons", Self.batch)
        #expect(refused.errorCode == "bad_request" && refused.json["message"]?.stringValue == "at most \(ConfigLimits.couponsMax) coupon batches in all, retired ones aside")
        #expect(await Self.claim(world, "u1").errorCode == "unknown_batch")
        await world.stop()
    }

    @Test(arguments: [
        #"{"id": "c", "total": 1, "value": 0, "starts_at": "now", "ends_at": "now+1h"}"#,
        #"{"id": "c", "total": 1, "value": 10, "starts_at": "now+1h", "ends_at": "now"}"#,
        #"{"id": "c", "total": 1, "value": 10, "starts_at": "now", "ends_at": "now+1h", "per_user": 0}"#,
        #"{"id": "c", "total": 1, "value": 10, "starts_at": "now", "ends_at": "now+1h", "kind": "x"}"#,
        #"{"id": "c", "value": 10, "starts_at": "now", "ends_at": "now+1h"}"#,
    ])
    func eachRuleOfTheFileIsRefusedTheSameWay(entry: String) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs), clock: ManualClock(startMs: Self.nowMs))
        let refused = await AdminWriteTests.post(world, "/v1/admin/coupons", entry)
        var fileError: ConfigError?
        do throws(ConfigError) {
            _ = try SaleConfig.parse(yaml: TestSecrets.configHeaderYAML + "coupons:\n  - " + entry + "\n", sourceName: "f.yaml", environment: [:], nowMs: Self.nowMs)
        } catch { fileError = error }
        let file = try #require(fileError)
        let key = file.key.hasPrefix("coupons[0].") ? String(file.key.dropFirst("coupons[0].".count)) : ""
        #expect(refused.status == 400 && refused.json["message"]?.stringValue == (key.isEmpty ? file.problem : "\(key): \(file.problem)"), "\(file)")
        #expect(await Self.claim(world, "u1", batch: "c").errorCode == "unknown_batch")
        await world.stop()
    }
}
