import ArgumentParser
import FlashSale
import FlashSaleHTTP
import FlashSaleJournal
import Foundation
import Logging
import Metrics

/// `flashsaled`: the FlashSale daemon and its helpers.
@main
struct FlashSaleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flashsaled",
        abstract: "FlashSale: a flash-sale engine that never sells stock it does not have.",
        version: FlashSaleMetrics.version,
        subcommands: [Serve.self, Token.self, Export.self],
        defaultSubcommand: Serve.self)
}

/// Loads the configuration named on the command line (or the built-in demo), exiting with
/// the config error's message when it is invalid.
func loadConfig(path: String?, nowMs: Int64 = SystemClock().nowMs()) throws -> SaleConfig {
    let environment = ProcessInfo.processInfo.environment
    do {
        return try SaleConfig.load(path: path ?? environment["FLASHSALE_CONFIG"], environment: environment, nowMs: nowMs)
    } catch {
        FileHandle.standardError.write(Data("flashsaled: config error: \(error)\n".utf8))
        throw ExitCode(2)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon.")

    @Option(help: "Config file (YAML). Without it, the built-in demo config.")
    var config: String?
    @Option(help: "Data directory (holds the SQLite database).")
    var data: String?
    @Option(help: "HTTP listen address, HOST:PORT.")
    var http: String?
    @Option(help: "Ops listen address, HOST:PORT.")
    var ops: String?
    @Option(help: "A listener of its own for /metrics, /healthz and /readyz, HOST:PORT (the buyer port then serves no /metrics).")
    var metrics: String?
    @Option(help: "Log lines as text or json (one object a line); default FLASHSALE_LOG_FORMAT, else text.")
    var logFormat: String?

    func validate() throws {
        if let http, HostPort(http) == nil { throw ValidationError("--http must be HOST:PORT, got '\(http)'") }
        if let metrics, HostPort(metrics) == nil { throw ValidationError("--metrics must be HOST:PORT, got '\(metrics)'") }
        if let logFormat, LogFormat(rawValue: logFormat) == nil {
            throw ValidationError("--log-format must be text or json, got '\(logFormat)'")
        }
        if let ops, HostPort(ops) == nil { throw ValidationError("--ops must be HOST:PORT, got '\(ops)'") }
        if let data, data.isEmpty { throw ValidationError("--data must not be empty") }
    }

    func run() async throws {
        let loadedAtMs = SystemClock().nowMs()
        var settings = try loadConfig(path: config, nowMs: loadedAtMs)
        // The command line beats the file, at the start and at every reload.
        let (dataFlag, httpFlag, opsFlag, metricsFlag) = (data, http, ops, self.metrics)
        let overrides: @Sendable (inout SaleConfig) -> Void = { settings in
            if let dataFlag { settings.dataDirectory = dataFlag }
            if let httpFlag { settings.http = HostPort(httpFlag)! }
            if let opsFlag { settings.ops = HostPort(opsFlag)! }
            if let metricsFlag { settings.metricsListener = HostPort(metricsFlag)! }
        }
        overrides(&settings)
        let configPath = config ?? ProcessInfo.processInfo.environment["FLASHSALE_CONFIG"]
        if let refusal = settings.publicSecretsRefusal {
            FileHandle.standardError.write(Data("flashsaled: \(refusal)\n".utf8))
            throw ExitCode(2)
        }
        let environment = ProcessInfo.processInfo.environment
        let level = environment["FLASHSALE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let formatName = logFormat ?? environment["FLASHSALE_LOG_FORMAT"] ?? LogFormat.text.rawValue
        guard let format = LogFormat(rawValue: formatName) else {
            FileHandle.standardError.write(Data("flashsaled: FLASHSALE_LOG_FORMAT must be text or json, got '\(formatName)'\n".utf8))
            throw ExitCode(2)
        }
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let logger = Logger(label: "flashsaled")
        // The only global bootstrap of metrics: everything else gets the registry injected.
        let metrics = FlashSaleMetrics()
        MetricsSystem.bootstrap(metrics.metricsFactory)
        if settings.sourceName == SaleConfig.demoSourceName {
            logger.notice("serving the built-in demo config with demo secrets: not for production")
        }
        do {
            try await FlashSaleDaemon.run(config: settings, logger: logger, metrics: metrics, configPath: configPath, loadedAtMs: loadedAtMs, overrides: overrides)
        } catch {
            logger.critical("stopped on error", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }
}

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a buyer token (JWT HS256) for a user.")

    @Option(help: "Config file whose secrets.user_token signs the token. Without it, the built-in demo config.")
    var config: String?
    @Option(help: "User id ([A-Za-z0-9._-]{1,64}).")
    var user: String
    @Option(help: "Lifetime in seconds.")
    var ttl: Int64 = 3600

    func validate() throws {
        guard ttl > 0 else { throw ValidationError("--ttl must be positive") }
        guard BuyerTokenVerifier.isValidSubject(user) else { throw ValidationError("--user must match [A-Za-z0-9._-]{1,64}") }
    }

    func run() throws {
        let settings = try loadConfig(path: config)
        let token = BuyerTokenIssuer(key: settings.secrets.signingKey)
            .mint(user: user, nowSeconds: SystemClock().nowMs() / 1000, ttlSeconds: ttl)
        print(token)
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every order of a data directory as CSV or NDJSON (finance reconciliation).",
        discussion: """
            Reads the database read-only, from a stopped daemon's data directory or a running one's.
            Each order comes with its status (paid, refund_pending, ...) and the transactions of any
            double charge to give back (refunds).
            """)

    @Option(help: "Data directory (holds the SQLite database).")
    var data: String
    @Option(help: "Only this event's orders.")
    var event: String?
    @Option(help: "Only orders created at or after this time (RFC 3339, or a UTC date such as 2026-12-06).")
    var since: String?
    @Option(help: "Output format: csv or ndjson.")
    var format: String

    func validate() throws {
        guard OrderExport.Format(rawValue: format) != nil else { throw ValidationError("--format must be csv or ndjson") }
        if let since, OrderExport.time(since) == nil {
            throw ValidationError("--since must be an RFC 3339 time (2026-12-06T20:00:00+08:00) or a date (2026-12-06)")
        }
        guard FileManager.default.fileExists(atPath: data + "/flashsale.db") else {
            throw ValidationError("no flashsale.db in \(data)")
        }
    }

    func run() throws {
        let exported = try OrderExport.run(
            directory: data, event: event, sinceMs: since.flatMap(OrderExport.time), format: OrderExport.Format(rawValue: format)!
        ) { line in print(line) }
        FileHandle.standardError.write(Data("\(exported) orders\n".utf8))
    }
}
