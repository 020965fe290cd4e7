import FlashSaleTestKit
import Foundation
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal
@testable import InventoryActor

/// The change feed through the admin API (§6 pull, §7 auth and orders): every change
/// appears once as its event, in id order, with the order's user; the admin token guards every
/// admin route; the listing pages through the durable orders.
@Suite struct ChangeFeedAndAdminTests {
    static let nowMs: Int64 = 1_795_000_000_000

    static func withEngine(_ body: (TestEngine) async throws -> Void) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let coupons = [CouponBatchConfig(
            id: "c1", total: 10, valueFen: 100, minSpendFen: 0, perUser: 1, perIP: 10,
            startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 3_600_000, validForMs: 3_600_000)]
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: nowMs, stock: 10, limitPerUser: 2, coupons: coupons)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: nowMs))
        try await body(world)
        await world.stop()
    }

    static func admin(_ world: TestEngine, _ path: String, query: String = "", token: String? = TestSecrets.admin) async -> APIResponse {
        var request = APIRequest(method: "GET", path: path, authorization: token.map { "Bearer " + $0 })
        request.query = query
        return await world.api.respond(to: request)
    }

    @Test func everyChangeAppearsOnceInIDOrderWithItsUser() async throws {
        try await Self.withEngine { world in
            let first = try #require(await world.order("u1").json["order"]?.stringValue)
            let second = try #require(await world.order("u2").json["order"]?.stringValue)
            #expect(await world.pay(order: first, transaction: "t1", amount: 990).status == 200)
            #expect(await world.pay(order: first, transaction: "t2", amount: 990).json["refund"]?.stringValue == "t2")
            var cancel = APIRequest(method: "POST", path: "/v1/orders/\(second)/cancel", authorization: world.bearer("u2"))
            cancel.clientIP = "10.0.0.2"
            #expect(await world.respond(to: cancel).status == 200)
            #expect(await world.claim("u3").status == 201)

            let page = await Self.admin(world, "/v1/admin/changes", query: "after=0&limit=1000")
            #expect(page.status == 200)
            let changes = page.json["changes"]?.arrayValue ?? []
            #expect(changes.compactMap { $0["type"]?.stringValue } == [
                "order.created", "order.created", "order.paid", "payment.refund", "order.canceled", "coupon.claimed",
            ])
            let ids = changes.compactMap { $0["id"]?.intValue }
            #expect(ids == ids.sorted() && Set(ids).count == ids.count, "ids strictly increase: \(ids)")
            #expect(page.json["next"]?.intValue == ids.last)
            #expect(changes[0]["data"]?["order"]?.stringValue == first)
            #expect(changes[0]["data"]?["user"]?.stringValue == "u1")
            #expect(changes[2]["data"]?["status"]?.stringValue == "paid")
            #expect(changes[3]["data"]?["refund"]?.stringValue == "t2")
            #expect(changes[5]["data"]?["user"]?.stringValue == "u3")
            #expect(changes.allSatisfy { $0["at"]?.stringValue == rfc3339(ms: Self.nowMs) })

            // Paging: after the third, two at a time.
            let next = await Self.admin(world, "/v1/admin/changes", query: "after=\(ids[2])&limit=2")
            #expect(next.json["changes"]?.arrayValue?.compactMap { $0["id"]?.intValue } == Array(ids[3...4]))
            #expect(next.json["next"]?.intValue == ids[4])
            let end = await Self.admin(world, "/v1/admin/changes", query: "after=\(ids.last!)")
            #expect(end.json["changes"]?.arrayValue?.isEmpty == true)
            #expect(end.json["next"]?.intValue == ids.last, "an empty page keeps the cursor")
        }
    }

    @Test(arguments: ["/v1/admin/changes", "/v1/admin/orders"])
    func adminRoutesNeedTheAdminToken(path: String) async throws {
        try await Self.withEngine { world in
            #expect(await Self.admin(world, path, token: nil).status == 401)
            #expect(await Self.admin(world, path, token: "wrong-admin-token-0123").status == 401)
            #expect(await Self.admin(world, path, token: TestSecrets.admin + "x").status == 401)
            let buyer = String(world.bearer("u1").dropFirst("Bearer ".count))
            #expect(await Self.admin(world, path, token: buyer).status == 401, "a buyer's token is not the admin's")
            let refused = await Self.admin(world, path, token: nil)
            #expect(refused.errorCode == "unauthorized")
            #expect(await Self.admin(world, path).status == 200)
        }
    }

    @Test(arguments: [
        ("/v1/admin/changes", "limit=0"), ("/v1/admin/changes", "limit=1001"), ("/v1/admin/changes", "after=-1"),
        ("/v1/admin/changes", "after=x"), ("/v1/admin/changes", "cursor=3"), ("/v1/admin/changes", "after=1&after=2"),
        ("/v1/admin/changes", "after=%zz"), ("/v1/admin/orders", "status=shipped"), ("/v1/admin/orders", "after=42"),
        ("/v1/admin/orders", "limit=abc"),
    ])
    func badQueriesAreRefusedByName(path: String, query: String) async throws {
        try await Self.withEngine { world in
            let response = await Self.admin(world, path, query: query)
            #expect(response.status == 400, "\(path)?\(query): \(response.status)")
            #expect(response.errorCode == "bad_request")
        }
    }

    @Test func ordersArePagedWithTheirUserAndFiltered() async throws {
        try await Self.withEngine { world in
            var ids: [String] = []
            for user in ["u1", "u2", "u3"] { ids.append(try #require(await world.order(user).json["order"]?.stringValue)) }
            #expect(await world.pay(order: ids[1], transaction: "t1", amount: 990).status == 200)
            let all = await Self.admin(world, "/v1/admin/orders", query: "event=e1&limit=2")
            let firstPage = all.json["orders"]?.arrayValue ?? []
            #expect(firstPage.count == 2)
            let cursor = try #require(all.json["next"]?.stringValue)
            let rest = await Self.admin(world, "/v1/admin/orders", query: "event=e1&after=\(cursor)")
            let listed = (firstPage + (rest.json["orders"]?.arrayValue ?? [])).compactMap { $0["order"]?["order"]?.stringValue }
            #expect(Set(listed) == Set(ids) && listed.count == 3)
            #expect(rest.json["next"] == .null, "a short page is the last")
            let paid = await Self.admin(world, "/v1/admin/orders", query: "status=paid")
            #expect(paid.json["orders"]?.arrayValue?.compactMap { $0["order"]?["user"]?.stringValue } == ["u2"])
            let other = await Self.admin(world, "/v1/admin/orders", query: "event=nope")
            #expect(other.json["orders"]?.arrayValue?.isEmpty == true)
        }
    }
}

/// `flashsaled export`: the durable orders, with their refunds, as CSV or NDJSON.
@Suite struct OrderExportTests {
    @Test func csvAndNDJSONListEveryOrderWithItsRefunds() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let nowMs = ChangeFeedAndAdminTests.nowMs
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: nowMs, stock: 10, limitPerUser: 2)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: nowMs))
        let first = try #require(await world.order("u1").json["order"]?.stringValue)
        _ = await world.order("u2")
        #expect(await world.pay(order: first, transaction: "t1", amount: 990).status == 200)
        #expect(await world.pay(order: first, transaction: "t,2", amount: 990).status == 200)
        await world.stop()

        var csv: [String] = []
        #expect(try OrderExport.run(directory: directory.path, event: "e1", sinceMs: nil, format: .csv) { csv.append($0) } == 2)
        #expect(csv[0] == OrderExport.csvColumns.joined(separator: ","))
        let paidLine = try #require(csv.first { $0.hasPrefix(first + ",") })
        #expect(paidLine.contains(",u1,1,paid,990,0,"))
        #expect(paidLine.hasSuffix(",t1,,,\"t,2\""), "the double charge's transaction, quoted: \(paidLine)")
        var lines: [String] = []
        try OrderExport.run(directory: directory.path, event: nil, sinceMs: nowMs + 1, format: .ndjson) { lines.append($0) }
        #expect(lines.isEmpty, "nothing created after --since")
        try OrderExport.run(directory: directory.path, event: nil, sinceMs: nil, format: .ndjson) { lines.append($0) }
        let parsed = try lines.map { try JSONParser.parse(Array($0.utf8)) }
        #expect(parsed.compactMap { $0["order"]?["user"]?.stringValue }.sorted() == ["u1", "u2"])
        #expect(parsed.first { $0["order"]?["order"]?.stringValue == first }?["refunds"]?.arrayValue?.compactMap(\.stringValue) == ["t,2"])
        #expect(OrderExport.csvField("=cmd()") == "'=cmd()", "no formula in a spreadsheet")
    }
}

/// The API's reference is what the daemon does: the served spec is docs/openapi.yaml, and every
/// error code the daemon can answer is documented in it and in docs/API.md.
@Suite struct APIReferenceTests {
    static func document(_ path: String) throws -> String {
        try String(contentsOf: CrashRecoveryTests.packageRoot.appendingPathComponent(path), encoding: .utf8)
    }

    @Test func theServedSpecIsDocsOpenAPIYAML() throws {
        #expect(OpenAPIDocument.yaml == (try Self.document("docs/openapi.yaml")), "run scripts/embed-openapi.sh")
        #expect(BuyerAPI.openAPIDocument.status == 200 && BuyerAPI.openAPIDocument.contentType == "application/yaml")
    }

    /// One of each case of `Rejection`; `case(of:)` stops compiling when a case is added, and
    /// the test checks that this list has one value per case it names.
    static let everyRejection: [Rejection] = [
        .unauthorized("x"), .rateLimited(retryAfterSeconds: 1), .unknownEvent, .unknownSKU, .unknownOrder, .badRequest("x"),
        .notStarted(startsAtMs: 0), .ended, .paused, .limitExceeded, .couponInvalid("x"), .soldOut, .orderClosed(.paid),
        .unknownGroup, .groupFull, .groupClosed, .alreadyMember, .unknownBatch, .exhausted, .ipLimitExceeded, .badSignature,
        .stale, .replay, .amountMismatch(expectedFen: 1), .unavailable("x"), .overloaded(retryAfterSeconds: 1), .tooLarge,
        .routeNotFound, .methodNotAllowed, .idempotencyMismatch, .conflict("x"),
    ]

    /// The case of `rejection`, by name; a switch without `default`, so a new case is a compile error here.
    static func `case`(of rejection: Rejection) -> String {
        switch rejection {
        case .unauthorized: "unauthorized"
        case .rateLimited: "rateLimited"
        case .unknownEvent: "unknownEvent"
        case .unknownSKU: "unknownSKU"
        case .unknownOrder: "unknownOrder"
        case .badRequest: "badRequest"
        case .notStarted: "notStarted"
        case .ended: "ended"
        case .paused: "paused"
        case .limitExceeded: "limitExceeded"
        case .couponInvalid: "couponInvalid"
        case .soldOut: "soldOut"
        case .orderClosed: "orderClosed"
        case .unknownGroup: "unknownGroup"
        case .groupFull: "groupFull"
        case .groupClosed: "groupClosed"
        case .alreadyMember: "alreadyMember"
        case .unknownBatch: "unknownBatch"
        case .exhausted: "exhausted"
        case .ipLimitExceeded: "ipLimitExceeded"
        case .badSignature: "badSignature"
        case .stale: "stale"
        case .replay: "replay"
        case .amountMismatch: "amountMismatch"
        case .unavailable: "unavailable"
        case .overloaded: "overloaded"
        case .tooLarge: "tooLarge"
        case .routeNotFound: "routeNotFound"
        case .methodNotAllowed: "methodNotAllowed"
        case .idempotencyMismatch: "idempotencyMismatch"
        case .conflict: "conflict"
        }
    }

    @Test func theListHoldsEveryCaseOnce() {
        let cases = Self.everyRejection.map(Self.case(of:))
        #expect(Set(cases).count == cases.count && cases.count == 31, "one value per case of the switch: \(cases)")
    }

    @Test func everyErrorCodeIsDocumentedWithItsStatus() throws {
        let spec = try Self.document("docs/openapi.yaml")
        let guide = try Self.document("docs/API.md")
        for rejection in Self.everyRejection {
            #expect(spec.contains("            - \(rejection.code)\n"), "\(rejection.code) missing from the Error enum of docs/openapi.yaml")
            let row = guide.split(separator: "\n").first { $0.hasPrefix("| \(rejection.status) |") && $0.contains("`\(rejection.code)`") }
            #expect(row != nil, "\(rejection.status) \(rejection.code) missing from docs/API.md's table of error codes")
        }
    }
}

/// The change feed's time fields, written digit by digit, read as `rfc3339(ms:)` does.
@Suite struct FeedTimeTests {
    @Test(arguments: [
        Int64(0), 999, 1_000, 1_795_000_000_000, 1_795_000_000_999, -1, -1_000, -1_001, 951_782_400_000, 4_102_444_799_000,
        253_402_300_799_000,
    ])
    func timeFieldsMatchRFC3339(ms: Int64) {
        let bytes = JSONWriter.object { $0.timeField("t", ms: ms) }
        #expect(String(decoding: bytes, as: UTF8.self) == "{\"t\":\"\(rfc3339(ms: ms))\"}")
    }

    /// 2 000 instants drawn from 1938 to 3237.
    @Test func timeFieldsMatchRFC3339AtRandomInstants() {
        var rng = SplitMix64(state: 42)
        for _ in 0..<2_000 {
            let ms = Int64(rng.next() % 40_000_000_000_000) - 1_000_000_000_000
            let bytes = JSONWriter.object { $0.timeField("t", ms: ms) }
            #expect(String(decoding: bytes, as: UTF8.self) == "{\"t\":\"\(rfc3339(ms: ms))\"}", "\(ms)")
        }
    }
}

/// The outbox through the engine (§6): an order whose commit fails leaves neither the
/// order nor its event; the orders acknowledged around it have both, once each.
@Suite struct ChangeFeedFailStopTests {
    @Test func anOrderWhoseCommitFailsLeavesNoEventAndTheFeedGoesOn() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let nowMs = ChangeFeedAndAdminTests.nowMs
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: nowMs, stock: 10, limitPerUser: 1)
        let disk = try await DiskFaultTests.FailingWorld(config: config, clock: ManualClock(startMs: nowMs), fault: DiskFaultTests.faults[0])
        let before = try #require(await disk.world.order("u1").json["order"]?.stringValue)
        disk.fail()
        #expect(await disk.world.order("u2").status == 503)
        try await disk.heal()
        let after = try #require(await disk.world.order("u3").json["order"]?.stringValue)
        await disk.stop()

        let changes = try JournalReader(directory: directory.path, feed: ChangeFeedJSON(clock: ManualClock(startMs: nowMs))).changes(after: 0, limit: 100)
        let orders = try changes.map { try JSONParser.parse($0.data)["order"]?.stringValue }
        #expect(orders == [before, after], "u2's refused order has no event")
        #expect(try changes.map { try JSONParser.parse($0.data)["user"]?.stringValue } == ["u1", "u3"])
        #expect(changes.map(\.type) == ["order.created", "order.created"])
        #expect(changes[1].id > changes[0].id)
        let state = try Journal.recover(directory: directory.path)
        #expect(Set(state.orders.map(\.user)) == ["u1", "u3"], "and no order")
    }
}
