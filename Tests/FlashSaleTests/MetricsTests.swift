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
        #expect(Self.sample(text, "flashsale_stock_total", ledger) == 3)
        #expect(Self.sample(text, "flashsale_stock_available", ledger) == 0)
        #expect(Self.sample(text, "flashsale_stock_reserved", ledger) == 2)
        #expect(Self.sample(text, "flashsale_stock_sold", ledger) == 1)
        #expect(Self.sample(text, "flashsale_checkpoint_seq") == 0)
        // Five records (three orders, one payment and its nonce) went through the journal, in some batching.
        #expect(Self.sample(text, "flashsale_journal_batch_records_sum") == 5)
        let commits = try #require(Self.sample(text, "flashsale_journal_batch_records_count"))
        #expect(commits >= 1 && commits <= 5)
        #expect(Self.sample(text, "flashsale_journal_commit_seconds_count") == commits)
        #expect(text.contains("flashsale_journal_commit_seconds_bucket{le="))
        await world.stop()
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
