import Foundation
import Prometheus
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal
@testable import InventoryActor

/// `/metrics`: the named series with the right values after a few orders.
@Suite struct MetricsTests {
    static let nowMs: Int64 = 1_795_000_000_000

    /// The value of the sample `name{labels}` in Prometheus text, if present.
    static func sample(_ text: String, _ name: String, _ labels: String = "") -> Double? {
        let prefix = labels.isEmpty ? name + " " : name + "{" + labels + "} "
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return Double(line.dropFirst(prefix.count))
    }

    @Test func metricsExposeRequestsClaimsTransitionsJournalAndStockAfterAFewOrders() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 3, limitPerUser: 2)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        let metrics = FlashSaleMetrics(registry: PrometheusCollectorRegistry())
        metrics.observe(journal: world.engine.journal!)
        await world.engine.inventory.setObserver(metrics)
        let api = MeteredResponder(BuyerAPI(engine: world.engine, userTokenSecret: TestSecrets.userToken, metrics: metrics), metrics: metrics)
        func order(_ user: String, qty: Int = 1) async -> APIResponse {
            await api.respond(to: APIRequest(
                method: "POST", path: "/v1/events/e1/orders", authorization: world.bearer(user),
                body: Array(#"{"sku":"A1","qty":\#(qty)}"#.utf8)))
        }
        let first = await order("u1")
        #expect(first.status == 201)
        #expect(await order("u2").status == 201)
        #expect(await order("u1", qty: 2).errorCode == "limit_exceeded")
        #expect(await order("u3").status == 201)
        #expect(await order("u4").errorCode == "sold_out")
        #expect(await world.pay(order: first.json["order"]!.stringValue!, transaction: "t1", amount: 990).status == 200)
        #expect(await api.respond(to: APIRequest(method: "GET", path: "/v1/events/nope")).status == 404)
        #expect(api.respondImmediately(to: APIRequest(method: "GET", path: "/healthz"))?.status == 200)

        let scrape = await api.respond(to: APIRequest(method: "GET", path: "/metrics"))
        #expect(scrape.status == 200)
        #expect(scrape.contentType.hasPrefix("text/plain"))
        let text = scrape.bodyText
        let route = #"route="POST /v1/events/{event}/orders""#
        #expect(Self.sample(text, "flashsale_http_requests_total", route + #",status="201""#) == 3, "\(text)")
        #expect(Self.sample(text, "flashsale_http_requests_total", route + #",status="409""#) == 2)
        #expect(Self.sample(text, "flashsale_http_requests_total", #"route="GET /v1/events/{event}",status="404""#) == 1)
        #expect(Self.sample(text, "flashsale_http_requests_total", #"route="GET /healthz",status="200""#) == 1)
        #expect(Self.sample(text, "flashsale_http_requests_inflight") == 1, "the scrape itself is in flight")
        #expect(Self.sample(text, "flashsale_claims_total", #"outcome="reserved""#) == 3)
        #expect(Self.sample(text, "flashsale_claims_total", #"outcome="limit_exceeded""#) == 1)
        #expect(Self.sample(text, "flashsale_claims_total", #"outcome="sold_out""#) == 1)
        #expect(Self.sample(text, "flashsale_order_transitions_total", #"status="pending""#) == 3)
        #expect(Self.sample(text, "flashsale_order_transitions_total", #"status="paid""#) == 1)
        #expect(Self.sample(text, "flashsale_order_transitions_total", #"status="expired""#) == 0)
        let ledger = #"event="e1",sku="A1""#
        #expect(Self.sample(text, "flashsale_stock", ledger + #",state="total""#) == 3)
        #expect(Self.sample(text, "flashsale_stock", ledger + #",state="available""#) == 0)
        #expect(Self.sample(text, "flashsale_stock", ledger + #",state="reserved""#) == 2)
        #expect(Self.sample(text, "flashsale_stock", ledger + #",state="sold""#) == 1)
        // Every order answered is timed, by status class: three 201s, two 409s.
        #expect(Self.sample(text, "flashsale_http_request_duration_seconds_count", route + #",status_class="2xx""#) == 3)
        #expect(Self.sample(text, "flashsale_http_request_duration_seconds_count", route + #",status_class="4xx""#) == 2)
        #expect(text.contains(#"flashsale_http_request_duration_seconds_bucket{route="POST /v1/events/{event}/orders",status_class="2xx",le="+Inf"} 3"#))
        #expect(Self.sample(text, "flashsale_build_info", #"version="\#(FlashSaleMetrics.version)",swift="\#(FlashSaleMetrics.swiftVersion)""#) == 1)
        #expect(Self.sample(text, "flashsale_journal_healthy") == 1)
        #expect(Self.sample(text, "flashsale_ready") == 1)
        #expect((Self.sample(text, "process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((Self.sample(text, "process_open_fds") ?? 0) > 3)
        #expect((Self.sample(text, "process_max_fds") ?? 0) >= (Self.sample(text, "process_open_fds") ?? 0))
        #expect((Self.sample(text, "process_cpu_seconds_total") ?? 0) > 0)
        let started = try #require(Self.sample(text, "process_start_time_seconds"))
        #expect(abs(started - Date().timeIntervalSince1970) < 24 * 3_600)
        // Every family has its HELP and TYPE, and none is unlisted.
        let types = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        let helps = Set(text.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
        #expect(!types.isEmpty)
        for family in types {
            #expect(helps.contains(family), "\(family) has no HELP")
            #expect(FlashSaleMetrics.families[String(family)] != nil, "\(family) is not in FlashSaleMetrics.families")
        }
        #expect(!text.contains("Unlisted series"))
        #expect(Self.sample(text, "flashsale_checkpoint_seq") == 0)
        // Five records (three orders, one payment and its nonce) went through the journal, in some batching.
        #expect(Self.sample(text, "flashsale_journal_batch_records_sum") == 5)
        let commits = try #require(Self.sample(text, "flashsale_journal_batch_records_count"))
        #expect(commits >= 1 && commits <= 5)
        #expect(Self.sample(text, "flashsale_journal_commit_seconds_count") == commits)
        #expect(text.contains("flashsale_journal_commit_seconds_bucket{le="))
        await world.stop()
    }

    @Test func aMetricsListenerOfItsOwnTakesTheScrapeOffTheBuyerPort() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 3, limitPerUser: 2)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        let metrics = FlashSaleMetrics(registry: PrometheusCollectorRegistry())
        // As the daemon wires them with `metrics:` set: the buyer API without the scrape, the
        // probes-only listener with it.
        let buyer = BuyerAPI(engine: world.engine, userTokenSecret: TestSecrets.userToken, metrics: nil)
        let probes = ProbesOnlyResponder(BuyerAPI(engine: world.engine, userTokenSecret: TestSecrets.userToken, metrics: metrics))
        #expect(await buyer.respond(to: APIRequest(method: "GET", path: "/metrics")).status == 404)
        let scrape = await probes.respond(to: APIRequest(method: "GET", path: "/metrics"))
        #expect(scrape.status == 200 && scrape.bodyText.contains("# HELP flashsale_build_info"))
        #expect(probes.isProbe(APIRequest(method: "GET", path: "/metrics")))
        #expect(probes.respondImmediately(to: APIRequest(method: "GET", path: "/healthz"))?.status == 200)
        #expect(probes.respondImmediately(to: APIRequest(method: "GET", path: "/readyz"))?.status == 200)
        // Nothing of the buyer API is reachable there.
        for (method, path) in [("GET", "/v1/events"), ("POST", "/v1/events/e1/orders"), ("GET", "/v1/admin/changes"), ("GET", "/openapi.yaml")] {
            let request = APIRequest(method: method, path: path, authorization: world.bearer("u1"), body: Array(#"{"sku":"A1"}"#.utf8))
            #expect(probes.respondImmediately(to: request)?.status == 404, "\(method) \(path)")
            #expect(await probes.respond(to: request).status == 404, "\(method) \(path)")
        }
        await world.stop()
    }

    @Test func anEventsStockSeriesGoADayAfterItsEnd() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = ManualClock(startMs: Self.nowMs)
        let world = try await TestEngine.start(config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs), clock: clock)
        let metrics = FlashSaleMetrics(registry: PrometheusCollectorRegistry())
        let ledger = #"event="e1",sku="A1",state="total""#
        #expect(Self.sample(String(decoding: await metrics.render(engine: world.engine, ready: true), as: UTF8.self), "flashsale_stock", ledger) == 10)
        // e1 ends an hour after the start: still exported 23 h later, gone after 24 h.
        clock.advance(ms: 24 * 3_600_000)
        #expect(Self.sample(String(decoding: await metrics.render(engine: world.engine, ready: true), as: UTF8.self), "flashsale_stock", ledger) == 10)
        clock.advance(ms: 2 * 3_600_000)
        let later = String(decoding: await metrics.render(engine: world.engine, ready: true), as: UTF8.self)
        #expect(!later.contains(#"flashsale_stock{event="e1""#), "\(later)")
        await world.stop()
    }

    @Test func processStatsReadAStatLineWhoseNameHoldsSpacesAndParentheses() throws {
        // pid (comm) state ppid ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24)
        let stat = "4242 (flash (sale) d) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 9 0 1000 104857600 2560 18446744073709551615"
        let stats = try #require(ProcessStats.parse(stat: stat, uptime: "500.00 900.00\n", ticksPerSecond: 100, pageSize: 4_096, nowSeconds: 1_800_000_000))
        #expect(stats.cpuSeconds == 4)
        #expect(stats.residentBytes == 2_560 * 4_096)
        #expect(stats.virtualBytes == 104_857_600)
        #expect(stats.startTimeSeconds == 1_800_000_000 - 500 + 10)
        #expect(ProcessStats.parse(stat: "4242 (x) S 1", uptime: "5 5", ticksPerSecond: 100, pageSize: 4_096) == nil)
        #expect(ProcessStats.read() != nil)
    }

    @Test(arguments: [
        ("POST", "/v1/events/e1/orders", "POST /v1/events/{event}/orders"),
        ("GET", "/v1/orders/o1a", "GET /v1/orders/{order}"),
        ("POST", "/v1/orders/o1a/cancel", "POST /v1/orders/{order}/cancel"),
        ("POST", "/v1/payments/notify", "POST /v1/payments/notify"),
        ("GET", "/metrics", "GET /metrics"),
        ("GET", "/v1/events/e1/../../etc", "other"),
        ("GET", "/anything/else", "other"),
    ])
    func routeLabelsAreTemplatesSoIdsNeverBecomeLabels(method: String, path: String, expected: String) {
        #expect(APIRoute(path: path).label(method: method) == expected)
    }
}
