// Every metric family the daemon exports, with its HELP text and (for histograms) its buckets,
// in one table; and the swift-metrics factory that creates series from it. Whatever creates a
// series (the HTTP responder, the journal observer, the webhook dispatcher through
// `MetricsSystem`) gets the same HELP for the same name, so `/metrics` passes
// `promtool check metrics`. A name missing from the table is a programming error that the
// tests catch (every family on `/metrics` must have its HELP).

import CoreMetrics
import Prometheus

/// What is known of a family before any series of it exists.
public struct MetricFamily: Sendable {
    /// The HELP line.
    public var help: String
    /// A histogram's buckets: durations, seconds.
    public var durationBuckets: [Duration]?
    /// A histogram's buckets: plain values.
    public var valueBuckets: [Double]?

    init(_ help: String, durationBuckets: [Duration]? = nil, valueBuckets: [Double]? = nil) {
        self.help = help
        self.durationBuckets = durationBuckets
        self.valueBuckets = valueBuckets
    }
}

extension FlashSaleMetrics {
    /// Latency buckets of HTTP answers: from an answer on the loop to a slow commit.
    static let requestDurationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
    ]

    /// Every family the daemon exports, by name (docs/OPS.md lists the same).
    public static let families: [String: MetricFamily] = [
        Name.httpRequests: MetricFamily("HTTP requests answered, by route template and status."),
        Name.httpInflight: MetricFamily("HTTP requests being answered now (a scrape counts itself)."),
        Name.httpRequestDuration: MetricFamily(
            "Time from a decoded HTTP request to its answer, by route template and status class.",
            durationBuckets: requestDurationBuckets),
        Name.claims: MetricFamily("Seckill order claims, by outcome: reserved or the rejection code."),
        Name.orderTransitions: MetricFamily("Orders entering a status, as the shards decided (expiry and late payments included)."),
        Name.restocks: MetricFamily("Restocks applied, of either sign."),
        Name.journalBatchRecords: MetricFamily("Records per journal commit.", valueBuckets: journalBatchRecordsBuckets),
        Name.journalCommitSeconds: MetricFamily("Time per journal commit, fsync included.", durationBuckets: journalCommitBuckets),
        Name.journalHealthy: MetricFamily("1 while the journal writes durably; 0 after a failed commit until it has recovered."),
        Name.ready: MetricFamily("1 while /readyz answers 200 (recovered, journal healthy, not draining)."),
        Name.httpConnections: MetricFamily("Open HTTP client connections, probe connections included."),
        Name.httpProbeConnections: MetricFamily("Open HTTP connections admitted from the probe reserve past the cap."),
        Name.checkpointSeq: MetricFamily("Sequence number of the last journal checkpoint."),
        Name.stock: MetricFamily("Stock units of a SKU, by state: total, available, reserved or sold."),
        Name.buildInfo: MetricFamily("Always 1; the labels say which build is running."),
        "flashsale_webhook_deliveries_total": MetricFamily("Changes a webhook receiver answered 2xx."),
        "flashsale_webhook_failed_attempts_total": MetricFamily("Webhook attempts answered otherwise: a status, a timeout, a refused connection."),
        "flashsale_webhook_parked_total": MetricFamily("Webhook deliveries given up after give_up_after."),
        "flashsale_webhook_lag_seconds": MetricFamily("Age of the change being delivered to a receiver now; 0 when caught up."),
        "process_cpu_seconds_total": MetricFamily("User and system CPU time of the daemon, seconds."),
        "process_resident_memory_bytes": MetricFamily("Resident memory of the daemon, bytes."),
        "process_virtual_memory_bytes": MetricFamily("Virtual memory of the daemon, bytes."),
        "process_open_fds": MetricFamily("Open file descriptors of the daemon."),
        "process_max_fds": MetricFamily("The daemon's limit of open file descriptors."),
        "process_start_time_seconds": MetricFamily("When the daemon started, unix seconds."),
    ]
}

/// swift-metrics' factory over a Prometheus registry, naming every family from
/// `FlashSaleMetrics.families`: its HELP, and a histogram's buckets.
struct FlashSaleMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry

    /// The family of `label`; an unlisted one gets a HELP that says so (and the tests fail).
    private func family(_ label: String) -> MetricFamily {
        FlashSaleMetrics.families[label] ?? MetricFamily("Unlisted series \(label).")
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: family(label).help)
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(
            descriptor: descriptor(label), labels: dimensions, buckets: family(label).valueBuckets ?? [1, 10, 100, 1_000, 10_000])
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            descriptor: descriptor(label), labels: dimensions,
            buckets: family(label).durationBuckets ?? FlashSaleMetrics.requestDurationBuckets)
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
