import FlashSale
import FlashSaleHTTP
import FlashSaleJournal
import FlashSaleWebhooks
import InventoryActor
import Logging
import ServiceLifecycle
import Synchronization

/// Recovers the engine from storage, then drives the clock-based work: expiry sweeps and
/// periodic checkpoints.
struct EngineService: Service {
    /// How often pending orders are swept for expiry, ms: the contract allows 1 s of lateness.
    public static let expirySweepIntervalMs: Int64 = 200
    /// How often changes past their retention are pruned, ms; each prune deletes at most
    /// `EngineLimits.changesPrunedPerRecordMax`, so a backlog drains over several minutes.
    public static let changesPruneIntervalMs: Int64 = 10_000

    let engine: SaleEngine
    let dataDirectory: String
    let checkpointIntervalMs: Int64
    let logger: Logger
    /// The config file's name, for errors it causes.
    var configSource = ""

    /// A service for `engine`, recovering from `dataDirectory`.
    public init(engine: SaleEngine, dataDirectory: String, checkpointIntervalMs: Int64, logger: Logger, configSource: String = "") {
        self.engine = engine
        self.configSource = configSource
        self.dataDirectory = dataDirectory
        self.checkpointIntervalMs = checkpointIntervalMs
        self.logger = logger
    }

    /// Recovers, then sweeps and checkpoints until graceful shutdown.
    public func run() async throws {
        let started = engine.clock.nowMs()
        let state = engine.journal == nil ? RecoveredState() : try Journal.recover(directory: dataDirectory)
        // An id in both the file and the admin API is the file's error.
        if case .failure(let error) = engine.adminEvents(in: state, configSource: configSource) {
            logger.critical("config error", metadata: ["error": "\(error)"])
            throw error
        }
        await engine.recover(from: state)
        logger.info("ready", metadata: ["recovery_ms": "\(engine.clock.nowMs() - started)"])
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(Self.expirySweepIntervalMs))
                        _ = await engine.admitted { await engine.expireDue() }
                    }
                }
                // Fail-stop: a failed commit closes the engine until its state is rebuilt from disk.
                if let journal = engine.journal {
                    group.addTask {
                        while !Task.isCancelled, await journal.failed() {
                            await engine.rebuildAfterFailedCommit()
                        }
                    }
                }
                // Recurring schedules keep their horizon of days ahead for as long as the daemon
                // runs, and events ended longer than `memory.retention` ago leave memory.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(SaleEngine.scheduleRollIntervalMs))
                        _ = await engine.admitted { await engine.rollSchedules() }
                        _ = await engine.admitted { await engine.retireEnded() }
                    }
                }
                // The change feed keeps `changes.retention`; older events go a bounded slice at a time.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(Self.changesPruneIntervalMs))
                        _ = await engine.admitted { engine.pruneChanges() }
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(checkpointIntervalMs))
                        if Task.isCancelled { break }
                        // Skipped while the engine is not ready (a rebuild after a failed commit).
                        if case .failure(let rejection)? = await engine.admitted({ await engine.checkpoint() }) {
                            logger.error("checkpoint failed", metadata: ["error": "\(rejection.message)"])
                        }
                    }
                }
            }
        }
    }
}

/// Keeps the journal open until everything else has stopped, then writes a final checkpoint
/// and closes it, so a clean stop leaves nothing to replay.
struct JournalService: Service {
    let engine: SaleEngine
    let logger: Logger

    /// A service closing `engine`'s journal last.
    public init(engine: SaleEngine, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    /// Waits for graceful shutdown, then checkpoints and closes.
    public func run() async throws {
        try? await gracefulShutdown()
        guard let journal = engine.journal else { return }
        if engine.isReady {
            switch await engine.checkpoint() {
            case .success(let seq): logger.info("final checkpoint", metadata: ["checkpoint_seq": "\(seq)"])
            case .failure(let rejection): logger.error("final checkpoint failed", metadata: ["error": "\(rejection.message)"])
            }
        }
        await journal.close()
    }
}

/// Pushes the change feed to the `webhooks[]` receivers once the engine has recovered, until
/// graceful shutdown; then shuts its HTTP client down. Listed after the engine's service, so it
/// stops before the journal closes (it journals each receiver's cursor).
struct WebhookService: Service {
    let engine: SaleEngine
    let feed: FeedConfig
    let logger: Logger
    /// New receiver lists from reloads.
    let updates: AsyncStream<FeedConfig>
    private let continuation: AsyncStream<FeedConfig>.Continuation

    /// A service delivering `feed` for `engine`.
    init(engine: SaleEngine, feed: FeedConfig, logger: Logger) {
        self.engine = engine
        self.feed = feed
        self.logger = logger
        (updates, continuation) = AsyncStream.makeStream(of: FeedConfig.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Delivers to `feed`'s receivers from now on (a reload): the current deliveries stop
    /// after their change in flight, and the new set starts from its cursors.
    func reconfigure(_ feed: FeedConfig) {
        continuation.yield(feed)
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            // Deliveries start from the recovered cursors.
            while !engine.isReady && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(50)) }
            var current = feed
            var updates = self.updates.makeAsyncIterator()
            while !Task.isCancelled {
                var dispatcher: WebhookDispatcher?
                var delivering: Task<Void, Never>?
                if !current.receivers.isEmpty {
                    do {
                        let started = try await WebhookDispatcher(engine: engine, feed: current, logger: logger)
                        dispatcher = started
                        delivering = Task { await started.run() }
                    } catch {
                        logger.error("webhooks: cannot start delivering", metadata: ["error": "\(error)"])
                    }
                }
                // Until a reload brings another set, or the shutdown (nil).
                let next = await updates.next()
                delivering?.cancel()
                await delivering?.value
                try? await dispatcher?.shutdown()
                guard let next else { break }
                engine.outbox.replaceReceivers(urls: next.receivers.map(\.url))
                logger.info("webhooks reconfigured", metadata: ["receivers": "\(next.receivers.map(\.url).joined(separator: ","))"])
                current = next
            }
        }
        continuation.finish()
    }
}
