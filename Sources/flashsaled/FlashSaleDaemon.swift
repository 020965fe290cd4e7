import FlashSale
import FlashSaleHTTP
import FlashSaleJournal
import FlashSaleOps
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Builds the daemon from a configuration and runs it until SIGTERM / SIGINT.
enum FlashSaleDaemon {
    /// Opens the journal, starts the listeners, recovers, serves; returns after a clean stop.
    /// `metrics` is what `/metrics` serves (main bootstraps `MetricsSystem` with the same registry).
    public static func run(
        config: SaleConfig, logger: Logger, metrics: FlashSaleMetrics = FlashSaleMetrics(), configPath: String? = nil,
        loadedAtMs: Int64 = SystemClock().nowMs(), overrides: @escaping @Sendable (inout SaleConfig) -> Void = { _ in }
    ) async throws {
        let clock = SystemClock()
        let journal: Journal?
        if config.journal.enabled {
            journal = try Journal(
                directory: config.dataDirectory, synchronous: config.journal.synchronous,
                batchMax: config.journal.batchMax, logger: logger, feed: ChangeFeedJSON(clock: clock))
        } else {
            journal = nil
            logger.warning("journal disabled: nothing is durable (benchmarks only)")
        }
        // The shards run on the HTTP server's event loops: a claim is decided where it is read.
        let group = MultiThreadedEventLoopGroup.singleton
        let engine = SaleEngine(
            config: config, clock: clock, journal: journal, logger: logger, loops: Array(group.makeIterator()))
        if let journal { metrics.observe(journal: journal) }
        let watchHub = StockWatchHub()
        await engine.inventory.setObserver(StockObserverFanout([watchHub, metrics]))
        // `/readyz` needs every listener: HTTP, ops, and the metrics one if there is one.
        let guards = BuyerGuards(config: config)
        let listening = ListeningFlag(required: config.metricsListener == nil ? 2 : 3)
        let api = BuyerAPI(
            engine: engine, guards: guards, listening: { listening.isSet }, metrics: config.metricsListener == nil ? metrics : nil)
        let server = HTTPServer(
            responder: MeteredResponder(api, metrics: metrics, logger: logger), group: group, limits: httpLimits(inflightMax: config.admissionMaxInflight, logger: logger),
            logger: logger)
        metrics.observe(server: server)
        // The metrics listener answers the scrape and the health checks only.
        let metricsService = config.metricsListener.map { address in
            let probes = BuyerAPI(engine: engine, listening: { listening.isSet }, metrics: metrics)
            let server = HTTPServer(responder: ProbesOnlyResponder(probes), group: group, limits: HTTPServerLimits(inflightMax: 64, connectionsMax: 64), logger: logger)
            return HTTPService(server: server, address: address, onListening: { _ in listening.set() })
        }
        let ops = OpsServer(engine: engine, watchHub: watchHub, logger: logger)
        // SIGHUP and ops RELOAD re-read the file (the built-in demo has none).
        let webhooks = WebhookService(engine: engine, feed: config.feed, logger: logger)
        let reloader = ConfigReloader(
            path: configPath, loadedAtMs: loadedAtMs, running: config, overrides: overrides, engine: engine, guards: guards,
            webhooks: { webhooks.reconfigure($0) }, logger: logger)
        engine.setReloader { await reloader.reload() }
        let services: [any Service] = [
            ReloadService(reloader: reloader),
            JournalService(engine: engine, logger: logger),
            EngineService(
                engine: engine, dataDirectory: config.dataDirectory, checkpointIntervalMs: config.journal.checkpointIntervalMs, logger: logger,
                configSource: config.sourceName),
            webhooks,
            HTTPService(server: server, address: config.http, onListening: { _ in listening.set() }),
            // After the journal and engine: shuts down before them, so no ops write races the final checkpoint.
            OpsService(server: ops, address: config.ops, onListening: { _ in listening.set() }),
        ] + (metricsService.map { [$0] } ?? [])
        let serviceGroup = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await serviceGroup.run()
        logger.info("stopped")
    }

    /// The HTTP limits, with the open-file limit raised to fit them; if the hard limit is too
    /// low, `connectionsMax` is lowered to fit it (so that running out of descriptors never
    /// stops the journal or the probe reserve) and a warning says so.
    static func httpLimits(inflightMax: Int, logger: Logger) -> HTTPServerLimits {
        let wanted = HTTPServerLimits(inflightMax: inflightMax)
        let available = OpenFileLimit.raise(to: wanted.descriptorsNeeded)
        let limits = wanted.fitting(descriptorsAvailable: available)
        if limits.connectionsMax < wanted.connectionsMax {
            logger.warning(
                "open-file limit too low for the connection cap: lowered",
                metadata: [
                    "nofile": "\(available)", "needed": "\(wanted.descriptorsNeeded)",
                    "connections_max": "\(limits.connectionsMax)", "fix": "raise LimitNOFILE (systemd) or ulimit -Hn",
                ])
        } else {
            logger.info("open-file limit", metadata: ["nofile": "\(available)", "connections_max": "\(limits.connectionsMax)"])
        }
        return limits
    }
}
