// The daemon's Prometheus series. Counters are fed where the events happen (HTTP responder,
// shard observer, journal writer); stock gauges are read from the owning shards at scrape
// time, so `/metrics` shows the same numbers as `GET /v1/events/{id}` and costs the claim path
// nothing. It owns no global state: the registry is injected, and only `main` bootstraps
// `MetricsSystem`.

import FlashSale
import CoreMetrics
import FlashSaleJournal
import InventoryActor
import Logging
import NIOCore
import Prometheus
import Synchronization

/// Every metric series of the daemon, on one Prometheus registry.
public final class FlashSaleMetrics: Sendable {
    /// Series names, in one place (docs/OPS.md lists them).
    public enum Name {
        /// Counter `{route, status}`: HTTP requests answered.
        public static let httpRequests = "flashsale_http_requests_total"
        /// Gauge: HTTP requests being answered now.
        public static let httpInflight = "flashsale_http_requests_inflight"
        /// Counter `{outcome}`: order claims by outcome (`reserved` or the rejection code).
        public static let claims = "flashsale_claims_total"
        /// Counter `{status}`: orders entering a status, as decided by the shards.
        public static let orderTransitions = "flashsale_order_transitions_total"
        /// Counter: restocks applied (either sign).
        public static let restocks = "flashsale_restocks_total"
        /// Histogram: records per journal commit.
        public static let journalBatchRecords = "flashsale_journal_batch_records"
        /// Histogram: seconds per journal commit.
        public static let journalCommitSeconds = "flashsale_journal_commit_seconds"
        /// Gauge: open HTTP client connections (probe connections included), at scrape time.
        public static let httpConnections = "flashsale_http_connections"
        /// Gauge: open HTTP connections admitted from the probe reserve, at scrape time.
        public static let httpProbeConnections = "flashsale_http_probe_connections"
        /// Gauge: the last checkpoint's sequence number.
        public static let checkpointSeq = "flashsale_checkpoint_seq"
        /// Gauge `{event, sku, state}`: stock units by state (`total`, `available`, `reserved`, `sold`).
        public static let stock = "flashsale_stock"
        /// Histogram `{route, status_class}`: seconds from a decoded request to its answer.
        public static let httpRequestDuration = "flashsale_http_request_duration_seconds"
        /// Gauge: 1 while the journal writes durably.
        public static let journalHealthy = "flashsale_journal_healthy"
        /// Gauge: 1 while the daemon is ready (`/readyz` 200).
        public static let ready = "flashsale_ready"
        /// Gauge `{version, swift}`: always 1.
        public static let buildInfo = "flashsale_build_info"
    }

    /// The daemon's version, as `flashsaled --version` and `flashsale_build_info` give it.
    public static let version = "0.7.0"

    /// The Swift compiler that built it, major.minor.
    static let swiftVersion: String = {
        #if compiler(>=6.3)
        "6.3"
        #elseif compiler(>=6.2)
        "6.2"
        #else
        "6"
        #endif
    }()

    /// Status classes of the duration histograms; anything else is counted with `5xx`'s neighbour `other`.
    static let statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"]

    /// Journal batch-size buckets, records: powers of two up to a large `journal.batch_max`.
    static let journalBatchRecordsBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
    /// Journal commit-latency buckets: from a page-cache write to a slow fsync.
    static let journalCommitBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    /// The registry the series live in (what `/metrics` renders).
    public let registry: PrometheusCollectorRegistry
    private let factory: FlashSaleMetricsFactory
    private let inflight: CoreMetrics.Meter
    private let journalBatchRecords: CoreMetrics.Recorder
    private let journalCommit: CoreMetrics.Timer
    private let transitions: [CoreMetrics.Counter]
    private let restocks: CoreMetrics.Counter
    /// `flashsale_http_requests_total` by route (`APIRoute.Template.rawValue`, then one for
    /// `other`) and status (`statusSlot`), created up front: counting a request is an index.
    private let requestCounters: [[CoreMetrics.Counter]]
    /// `flashsale_claims_total` by outcome, created up front for every outcome an order can have.
    private let claimCounters: [String: CoreMetrics.Counter]
    /// `flashsale_http_request_duration_seconds` by route (as `requestCounters`) and status
    /// class (`statusClasses`, then one for anything else).
    private let requestDurations: [[CoreMetrics.Timer]]
    /// What `process_cpu_seconds_total` has been counted up to.
    private let cpuSecondsCounted = Mutex<Double>(0)
    /// The stock series exported by the last scrape, to drop those of events gone from it.
    private let stockSeries = Mutex<[LedgerKey: [CoreMetrics.Gauge]]>([:])

    /// How long after its end an event's stock is still exported: as long as `GET /v1/events`
    /// lists it. Then its series go, so the families do not grow with every sale day.
    static let stockKeptAfterEndMs: Int64 = 86_400_000
    /// The HTTP server whose open connections are read at scrape time; nil until `observe(server:)`.
    /// A weak reference, not a closure: a closure read out of a `Mutex` gains a reabstraction
    /// thunk at every read (see `Journal.CommitObserver`).
    private let server = Mutex<WeakServer>(WeakServer())

    /// Series on `registry` (a fresh one by default; tests pass their own and read it back).
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        let factory = FlashSaleMetricsFactory(registry: registry)
        self.registry = registry
        self.factory = factory
        self.inflight = CoreMetrics.Meter(label: Name.httpInflight, factory: factory)
        self.journalBatchRecords = CoreMetrics.Recorder(label: Name.journalBatchRecords, aggregate: true, factory: factory)
        self.journalCommit = CoreMetrics.Timer(label: Name.journalCommitSeconds, factory: factory)
        let statuses = OrderStatus.allCases
        let byRaw = (0...Int(statuses.map(\.rawValue).max()!)).map { raw in
            CoreMetrics.Counter(label: Name.orderTransitions, dimensions: [("status", OrderStatus(rawValue: UInt8(raw))?.description ?? "unknown")], factory: factory)
        }
        self.transitions = byRaw
        self.restocks = CoreMetrics.Counter(label: Name.restocks, factory: factory)
        let labels = APIRoute.Template.allCases.map(\.label) + ["other"]
        self.requestCounters = labels.map { route in
            Self.statuses.map { status in
                CoreMetrics.Counter(label: Name.httpRequests, dimensions: [("route", route), ("status", String(status))], factory: factory)
            }
        }
        self.claimCounters = Dictionary(uniqueKeysWithValues: (["reserved"] + Rejection.orderCodes).map { outcome in
            (outcome, CoreMetrics.Counter(label: Name.claims, dimensions: [("outcome", outcome)], factory: factory))
        })
        self.requestDurations = labels.map { route in
            (Self.statusClasses + ["other"]).map { statusClass in
                CoreMetrics.Timer(label: Name.httpRequestDuration, dimensions: [("route", route), ("status_class", statusClass)], factory: factory)
            }
        }
        CoreMetrics.Gauge(label: Name.buildInfo, dimensions: [("version", Self.version), ("swift", Self.swiftVersion)], factory: factory).record(1)
    }

    /// Every status the API answers with (a series each per route); others are counted as
    /// they come (`statusSlot` nil).
    static let statuses = [200, 201, 400, 401, 404, 405, 409, 410, 413, 422, 425, 429, 500, 503]

    /// `status`'s index in `statuses`.
    static func statusSlot(_ status: Int) -> Int? {
        switch status {
        case 200: 0
        case 201: 1
        case 400: 2
        case 401: 3
        case 404: 4
        case 405: 5
        case 409: 6
        case 410: 7
        case 413: 8
        case 422: 9
        case 425: 10
        case 429: 11
        case 500: 12
        case 503: 13
        default: nil
        }
    }

    /// The factory behind these series, for `MetricsSystem.bootstrap` in `main`.
    public var metricsFactory: any MetricsFactory { factory }

    // MARK: Feeding

    /// One HTTP request started.
    func requestStarted() { inflight.increment() }

    /// One HTTP request answered (`requestStarted` pairs with it for async routes), `startNs`
    /// (uptime) the moment it was taken; a claim's outcome counted too for an order.
    func requestFinished(_ request: APIRequest, _ response: APIResponse, async: Bool, startNs: UInt64) {
        if async { inflight.decrement() }
        let template = request.route.template.flatMap { $0.method == request.method ? $0 : nil }
        let route = template?.rawValue ?? APIRoute.Template.allCases.count
        let statusClass = response.status / 100 - 1
        requestDurations[route][(0..<Self.statusClasses.count).contains(statusClass) ? statusClass : Self.statusClasses.count]
            .recordNanoseconds(Int64(clamping: NIODeadline.now().uptimeNanoseconds &- startNs))
        if let slot = Self.statusSlot(response.status) {
            requestCounters[route][slot].increment()
        } else {
            let label = template?.label ?? "other"
            CoreMetrics.Counter(label: Name.httpRequests, dimensions: [("route", label), ("status", String(response.status))], factory: factory).increment()
        }
        if template == .eventOrders {
            let outcome = response.status == 201 ? "reserved" : response.rejectionCode ?? "status_\(response.status)"
            if let counter = claimCounters[outcome] {
                counter.increment()
            } else {
                CoreMetrics.Counter(label: Name.claims, dimensions: [("outcome", outcome)], factory: factory).increment()
            }
        }
    }

    /// A request counted by `requestStarted` went elsewhere (to the async path, counted there).
    func requestNotTaken() { inflight.decrement() }

    /// A shard-recorded change (called inside the shard: atomics only, no waiting).
    func changeRecorded(_ change: InventoryChange) {
        switch change {
        case .order(let order): transitions[Int(order.status.rawValue)].increment()
        case .restock: restocks.increment()
        case .doublePayment, .group, .coupon: break
        }
    }

    /// One journal commit of `records` records that took `duration`.
    func journalCommitted(records: Int, duration: Duration) {
        journalBatchRecords.record(records)
        journalCommit.recordNanoseconds(Int64(duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    /// Feeds journal commits of `journal` into the histograms.
    public func observe(journal: Journal) {
        journal.setCommitObserver { [self] records, duration in journalCommitted(records: records, duration: duration) }
    }

    /// Reads `server`'s open connections into the connection gauges at every scrape.
    public func observe(server: HTTPServer) {
        self.server.withLock { $0 = WeakServer(server: server, observed: true) }
    }

    // MARK: Scraping

    /// Refreshes the stock gauges, checkpoint sequence, health and process series from
    /// `engine` (`ready`: what `/readyz` would answer), then renders every series as
    /// Prometheus text.
    public func render(engine: SaleEngine, ready: Bool) async -> [UInt8] {
        let nowMs = engine.clock.nowMs()
        var exported: [LedgerKey: [CoreMetrics.Gauge]] = [:]
        for shard in engine.inventory.shards {
            for (key, counters) in await shard.allCounters() {
                guard let event = engine.catalog.event(key.event), event.config.endsAtMs > nowMs - Self.stockKeptAfterEndMs else { continue }
                let gauges = stockSeries.withLock { $0[key] } ?? ["total", "available", "reserved", "sold"].map { state in
                    CoreMetrics.Gauge(label: Name.stock, dimensions: [("event", key.event), ("sku", key.sku), ("state", state)], factory: factory)
                }
                for (gauge, value) in zip(gauges, [counters.total, counters.available, counters.reserved, counters.sold]) { gauge.record(value) }
                exported[key] = gauges
            }
        }
        let gone = stockSeries.withLock { series in
            defer { series = exported }
            return series.filter { exported[$0.key] == nil }.flatMap(\.value)
        }
        for gauge in gone { gauge.destroy() }
        CoreMetrics.Gauge(label: Name.checkpointSeq, factory: factory).record(engine.journal?.checkpointSeq ?? 0)
        CoreMetrics.Gauge(label: Name.journalHealthy, factory: factory).record((engine.journal?.isHealthy ?? true) ? 1 : 0)
        CoreMetrics.Gauge(label: Name.ready, factory: factory).record(ready ? 1 : 0)
        if let process = ProcessStats.read() {
            CoreMetrics.Gauge(label: "process_resident_memory_bytes", factory: factory).record(process.residentBytes)
            CoreMetrics.Gauge(label: "process_virtual_memory_bytes", factory: factory).record(process.virtualBytes)
            CoreMetrics.Gauge(label: "process_open_fds", factory: factory).record(process.openFDs)
            CoreMetrics.Gauge(label: "process_max_fds", factory: factory).record(process.maxFDs)
            CoreMetrics.Gauge(label: "process_start_time_seconds", factory: factory).record(process.startTimeSeconds)
            // A counter takes increments: add what was used since the last scrape.
            let delta = cpuSecondsCounted.withLock { counted in
                defer { counted = max(counted, process.cpuSeconds) }
                return max(0, process.cpuSeconds - counted)
            }
            CoreMetrics.FloatingPointCounter(label: "process_cpu_seconds_total", factory: factory).increment(by: delta)
        }
        let (observed, server) = self.server.withLock { ($0.observed, $0.server) }
        if observed {
            CoreMetrics.Gauge(label: Name.httpConnections, factory: factory).record(server?.connectionCount ?? 0)
            CoreMetrics.Gauge(label: Name.httpProbeConnections, factory: factory).record(server?.probeConnectionCount ?? 0)
        }
        return registry.emitToBuffer()
    }

}

/// Counts every request of an inner responder by route and status, claims by outcome, and
/// requests in flight; answers exactly as the inner responder does.
public struct MeteredResponder: HTTPResponder {
    let inner: any HTTPResponder
    let metrics: FlashSaleMetrics
    /// Where each answered request is logged at `debug` (route, status, latency).
    let logger: Logger?

    /// Wraps `inner`, feeding `metrics`, logging each request to `logger` at `debug`.
    public init(_ inner: any HTTPResponder, metrics: FlashSaleMetrics, logger: Logger? = nil) {
        self.inner = inner
        self.metrics = metrics
        self.logger = logger
    }

    /// Counts, times and (at `debug`) logs one answered request.
    private func finished(_ request: APIRequest, _ response: APIResponse, async: Bool, startNs: UInt64) {
        metrics.requestFinished(request, response, async: async, startNs: startNs)
        if let logger, logger.logLevel <= .debug {
            let template = request.route.template.flatMap { $0.method == request.method ? $0 : nil }
            logger.debug(
                "request",
                metadata: [
                    "route": "\(template?.label ?? "other")", "status": "\(response.status)",
                    "latency_us": "\((NIODeadline.now().uptimeNanoseconds &- startNs) / 1_000)",
                ])
        }
    }

    /// The inner immediate answer, counted.
    public func respondImmediately(to request: APIRequest) -> APIResponse? {
        let start = NIODeadline.now().uptimeNanoseconds
        guard let response = inner.respondImmediately(to: request) else { return nil }
        finished(request, response, async: false, startNs: start)
        return response
    }

    /// Whether the inner responder takes `request` for a probe.
    public func isProbe(_ request: APIRequest) -> Bool { inner.isProbe(request) }

    /// The inner answer on the loop, if it takes the request there, counted.
    public func respond(to request: APIRequest, on loop: any EventLoop, reply: @escaping (APIResponse) -> Void) -> Bool {
        metrics.requestStarted()
        let start = NIODeadline.now().uptimeNanoseconds
        let taken = inner.respond(to: request, on: loop) { response in
            finished(request, response, async: true, startNs: start)
            reply(response)
        }
        if !taken { metrics.requestNotTaken() }
        return taken
    }

    /// The inner answer, counted, with the request in flight meanwhile.
    public func respond(to request: APIRequest) async -> APIResponse {
        metrics.requestStarted()
        let start = NIODeadline.now().uptimeNanoseconds
        let response = await inner.respond(to: request)
        finished(request, response, async: true, startNs: start)
        return response
    }
}

/// The observed HTTP server, held weakly: the metrics never keep a stopped server alive.
private struct WeakServer {
    weak var server: HTTPServer?
    /// Whether `observe(server:)` was called (the gauges exist only then).
    var observed = false
}

extension FlashSaleMetrics: StockObserver {
    /// Counts the order transition or restock (inside the shard: atomics only).
    public func stockChanged(_ key: LedgerKey, _ counters: StockCounters, by change: InventoryChange) {
        changeRecorded(change)
    }
}

/// Passes every shard change to several observers, in order.
public struct StockObserverFanout: StockObserver {
    let observers: [any StockObserver]

    /// A fan-out to `observers`.
    public init(_ observers: [any StockObserver]) {
        self.observers = observers
    }

    /// Tells each observer.
    public func stockChanged(_ key: LedgerKey, _ counters: StockCounters, by change: InventoryChange) {
        for observer in observers { observer.stockChanged(key, counters, by: change) }
    }
}

/// The responder of a listener for Prometheus and health checkers only: `GET /metrics`,
/// `/healthz` and `/readyz` as the inner responder answers them, `404 not_found` for anything
/// else, so a scrape port can be opened where the buyer API must not be.
public struct ProbesOnlyResponder: HTTPResponder {
    let inner: any HTTPResponder

    /// Passes the probes to `inner`.
    public init(_ inner: any HTTPResponder) {
        self.inner = inner
    }

    private func isAllowed(_ request: APIRequest) -> Bool {
        switch request.route.template {
        case .healthz, .readyz, .metrics: true
        default: false
        }
    }

    public func respondImmediately(to request: APIRequest) -> APIResponse? {
        guard isAllowed(request) else { return APIResponse(rejection: .routeNotFound) }
        return inner.respondImmediately(to: request)
    }

    public func isProbe(_ request: APIRequest) -> Bool { isAllowed(request) && inner.isProbe(request) }

    public func respond(to request: APIRequest) async -> APIResponse {
        guard isAllowed(request) else { return APIResponse(rejection: .routeNotFound) }
        return await inner.respond(to: request)
    }
}
