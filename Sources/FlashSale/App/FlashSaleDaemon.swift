import Logging
import ServiceLifecycle
import Synchronization

/// Builds the daemon from a configuration and runs it until SIGTERM / SIGINT.
public enum FlashSaleDaemon {
    /// Opens the journal, starts the listeners, recovers, serves; returns after a clean stop.
    public static func run(config: SaleConfig, logger: Logger) async throws {
        let journal: Journal?
        if config.journal.enabled {
            journal = try Journal(
                directory: config.dataDirectory, synchronous: config.journal.synchronous,
                batchMax: config.journal.batchMax, logger: logger)
        } else {
            journal = nil
            logger.warning("journal disabled: nothing is durable (benchmarks only)")
        }
        let engine = SaleEngine(config: config, clock: SystemClock(), journal: journal, logger: logger)
        let listening = ListeningFlag()
        let api = BuyerAPI(
            engine: engine, userTokenSecret: config.secrets.userToken, guards: BuyerGuards(config: config),
            listening: { listening.isSet })
        let server = HTTPServer(responder: api, limits: HTTPServerLimits(inflightMax: config.admissionMaxInflight), logger: logger)
        let services: [any Service] = [
            JournalService(engine: engine, logger: logger),
            EngineService(engine: engine, dataDirectory: config.dataDirectory, checkpointIntervalMs: config.journal.checkpointIntervalMs, logger: logger),
            HTTPService(server: server, address: config.http, onListening: { _ in listening.set() }),
        ]
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        logger.info("stopped")
    }
}

/// Set once the listeners are open (`/readyz`).
final class ListeningFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
