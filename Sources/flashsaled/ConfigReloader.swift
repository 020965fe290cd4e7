import FlashSale
import FlashSaleHTTP
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads the config file into the running daemon (SIGHUP, ops `RELOAD`), one reload at a
/// time: read and checked whole, as a start would, with the same command-line overrides;
/// compared with what runs (`SaleEngine.planReload`); applied, or refused with nothing changed.
actor ConfigReloader {
    private let path: String?
    /// When the file was first read: its `now` means that instant at every reload, so an
    /// event given as `now+1h` is the same event each time.
    private let loadedAtMs: Int64
    private let overrides: @Sendable (inout SaleConfig) -> Void
    private var running: SaleConfig
    private let engine: SaleEngine
    private let guards: BuyerGuards
    /// Hands a new set of webhook receivers to the delivery service.
    private let webhooks: @Sendable (FeedConfig) -> Void
    private let logger: Logger

    /// A reloader of `path` (nil: the built-in demo, which has no file), applying `overrides`
    /// (the command line's) to what it reads.
    init(
        path: String?, loadedAtMs: Int64, running: SaleConfig, overrides: @escaping @Sendable (inout SaleConfig) -> Void, engine: SaleEngine,
        guards: BuyerGuards, webhooks: @escaping @Sendable (FeedConfig) -> Void = { _ in }, logger: Logger
    ) {
        self.webhooks = webhooks
        self.path = path
        self.loadedAtMs = loadedAtMs
        self.running = running
        self.overrides = overrides
        self.engine = engine
        self.guards = guards
        self.logger = logger
    }

    /// Reads, checks and applies the file; the summary, or why nothing changed.
    func reload() async -> Result<String, ConfigError> {
        let result = await attempt()
        switch result {
        case .success(let summary): logger.info("config reloaded", metadata: ["changes": "\(summary)"])
        case .failure(let error): logger.error("config reload refused: nothing changed", metadata: ["error": "\(error)"])
        }
        return result
    }

    private func attempt() async -> Result<String, ConfigError> {
        guard let path else {
            return .failure(ConfigError(source: SaleConfig.demoSourceName, key: "", problem: "the built-in demo config has no file to reload"))
        }
        var config: SaleConfig
        do throws(ConfigError) {
            config = try SaleConfig.load(path: path, environment: ProcessInfo.processInfo.environment, nowMs: loadedAtMs)
        } catch {
            return .failure(error)
        }
        overrides(&config)
        if let refusal = config.publicSecretsRefusal {
            return .failure(ConfigError(source: path, key: "secrets", problem: refusal))
        }
        switch engine.planReload(from: running, to: config) {
        case .failure(let error): return .failure(error)
        case .success(let plan):
            await engine.apply(plan)
            guards.replace(with: config)
            if config.feed != running.feed { webhooks(config.feed) }
            running = config
            return .success(plan.summary)
        }
    }
}

/// Reloads on SIGHUP until graceful shutdown.
struct ReloadService: Service {
    let reloader: ConfigReloader

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                _ = await reloader.reload()
            }
        }
    }
}
