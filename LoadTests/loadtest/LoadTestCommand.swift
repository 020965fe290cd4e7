import ArgumentParser
import FlashSale
import Foundation
import NIOCore
import NIOPosix

/// The outcome of a run, copied off the run's event loop.
struct LoadRunResult: Sendable {
    var seckillItems: [SaleItem]
    var groupItems: [SaleItem]
    var observed: Observed
    var seconds: [SecondStats]
    var endpointLatency: [Endpoint: LatencyHistogram]
    var endpointOutcomes: [Endpoint: [String: Int]]
    var arrivalsPlanned: Int
    var requestsSent: Int
    var unanswered: Int
    var connectFailures: Int
}

/// What the progress line shows, copied off the run's event loop.
struct Progress: Sendable {
    var elapsedNs: UInt64
    var lastSecond: SecondStats?
    var totals: [String: Int]
    var inflight: Int
    var connections: Int
    var finishedSchedule: Bool
}

@main
struct LoadTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Replays a sale scenario against flashsaled open-loop, audits it and writes a report.")

    @Argument(help: "The scenario file (LoadTests/scenarios/wed-8pm.yaml).")
    var scenario: String

    @Flag(help: "Start flashsaled (next to this binary, or --flashsaled) on a temp data dir with the scenario's server config.")
    var spawn = false

    @Option(help: "The flashsaled binary for --spawn.")
    var flashsaled: String?

    @Option(help: "HTTP address of a running flashsaled (without --spawn).")
    var http = "127.0.0.1:8080"

    @Option(help: "Ops address of a running flashsaled (without --spawn).")
    var ops = "127.0.0.1:7070"

    @Option(help: "Multiply every arrival rate (the curve and the bots).")
    var rateScale = 1.0

    @Option(help: "Multiply every time of the arrival curve (0.1 plays a 30 s curve in 3 s).")
    var timeScale = 1.0

    @Option(help: "Directory for report.json and report.html.")
    var out = "loadtest-report"

    func run() async throws {
        let base = try Scenario.load(path: scenario)
        let scenario = base.scaled(rateScale: rateScale, timeScale: timeScale)
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        let config = try scenario.serverConfig(nowMs: nowMs)

        var daemon: SpawnedDaemon? = nil
        var httpAddress = try parseAddress(http)
        var opsAddress = try parseAddress(ops)
        if spawn {
            let binary =
                flashsaled
                ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flashsaled").path
            let started = try await SpawnedDaemon.start(binary: binary, configYAML: scenario.serverYAML)
            daemon = started
            httpAddress = ("127.0.0.1", started.httpPort)
            opsAddress = ("127.0.0.1", started.opsPort)
            log(
                "spawned flashsaled pid \(started.process.processIdentifier), http :\(started.httpPort), ops :\(started.opsPort), data \(started.directory)"
            )
        }
        do {
            let passed = try await drive(scenario: scenario, config: config, httpAddress: httpAddress, opsAddress: opsAddress)
            if let daemon { try daemon.stop() }
            if !passed { throw ExitCode(1) }
        } catch {
            if let daemon { try? daemon.stop() }
            throw error
        }
    }

    private func drive(
        scenario: Scenario, config: SaleConfig, httpAddress: (host: String, port: Int), opsAddress: (host: String, port: Int)
    ) async throws -> Bool {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let target = try SocketAddress(ipAddress: httpAddress.host, port: httpAddress.port)
        let eventIDs = config.events.map(\.id)
        let run = try LoadRun(loop: loop, scenario: scenario, config: config, target: target)
        log(
            "scenario \(self.scenario): \(run.schedule.count) arrivals over \(String(format: "%.1f", scenario.durationSeconds)) s, "
                + "\(scenario.users) users on \(scenario.sourceIPs) source addresses, \(scenario.botIPs) bots")

        return try await OpsClient.with(host: opsAddress.host, port: opsAddress.port) { ops in
            let before = try await readCounters(ops, events: eventIDs)
            let statsBefore = try await readStats(ops)
            var stock: [String: [Int]] = [:]
            func sampleStock() async throws {
                for (key, counters) in try await readCounters(ops, events: eventIDs) { stock[key, default: []].append(counters.available) }
            }
            try await sampleStock()
            let started = Date()
            try await loop.submit { run.begin() }.get()
            let deadlineNs = UInt64((scenario.durationSeconds + scenario.drainSeconds) * 1e9)
            var nextLineNs: UInt64 = 1_000_000_000
            while true {
                let progress = try await loop.submit { run.progress() }.get()
                if progress.finishedSchedule, progress.inflight == 0 { break }
                if progress.elapsedNs >= deadlineNs { break }
                if progress.elapsedNs >= nextLineNs {
                    nextLineNs += 1_000_000_000
                    log(progressLine(progress))
                    try await sampleStock()
                    continue
                }
                try await Task.sleep(nanoseconds: min(nextLineNs - progress.elapsedNs, 100_000_000))
            }
            let result = try await loop.submit { () -> LoadRunResult in
                run.end()
                return run.result()
            }.get()
            try await sampleStock()
            log(progressLine(try await loop.submit { run.progress() }.get()))

            let after = try await readCounters(ops, events: eventIDs)
            let statsAfter = try await readStats(ops)
            let bearer =
                "Bearer "
                + BuyerTokenIssuer(key: config.secrets.signingKey).mint(
                    user: "auditor", nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
            let checks = try await AuditHTTP.with(host: httpAddress.host, port: httpAddress.port) { http in
                try await audit(
                    run: result, config: config, before: before, after: after, statsBefore: statsBefore, statsAfter: statsAfter,
                    http: http, bearer: bearer)
            }
            let report = Report(
                scenario: self.scenario, target: "\(httpAddress.host):\(httpAddress.port)", started: started, scenarioConfig: scenario,
                result: result, stock: stock, stockTotal: after.mapValues(\.total), statsBefore: statsBefore, statsAfter: statsAfter,
                audit: checks)
            print(report.summaryText())
            try report.write(directory: out)
            log("report: \(out)/report.json, \(out)/report.html")
            return report.auditPassed
        }
    }

    private func progressLine(_ p: Progress) -> String {
        let second = p.lastSecond
        let p99 = second.map { Double($0.p99Us) / 1000 } ?? 0
        let top = p.totals.sorted { $0.value > $1.value }.prefix(6).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return String(
            format: "t=%5.1fs offered=%6d/s achieved=%6d/s inflight=%5d conns=%4d p99=%7.2fms | %@",
            Double(p.elapsedNs) / 1e9, second?.offered ?? 0, second?.achieved ?? 0, p.inflight, p.connections, p99, top)
    }

    private func parseAddress(_ text: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
            throw ValidationError("expected HOST:PORT, got \(text)")
        }
        return (String(text[..<colon]), port)
    }
}

extension LoadRun {
    func progress() -> Progress {
        let now = elapsedNs
        let current = Int(now / 1_000_000_000)
        closeSeconds(before: min(current, seconds.count - 1))
        let last = current >= 1 && current - 1 < seconds.count ? seconds[current - 1] : nil
        return Progress(
            elapsedNs: now, lastSecond: last, totals: outcomeTotals, inflight: inflight, connections: openConnections,
            finishedSchedule: finishedSchedule)
    }

    func result() -> LoadRunResult {
        closeSeconds(before: seconds.count)
        return LoadRunResult(
            seckillItems: seckillItems, groupItems: groupItems, observed: observedAtEnd, seconds: seconds,
            endpointLatency: endpointLatency, endpointOutcomes: endpointOutcomes, arrivalsPlanned: schedule.count,
            requestsSent: sent, unanswered: inflight, connectFailures: connectFailures)
    }
}

/// Prints to stderr (stdout carries the summary).
func log(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// A flashsaled started by `--spawn` on a temp data dir, stopped with SIGTERM.
struct SpawnedDaemon {
    let process: Process
    let directory: String
    let httpPort: Int
    let opsPort: Int

    static func start(binary: String, configYAML: String) async throws -> SpawnedDaemon {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ClientError("no flashsaled at \(binary): build it (swift build --product flashsaled) or pass --flashsaled")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loadtest-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let configPath = directory + "/config.yaml"
        try configYAML.write(toFile: configPath, atomically: true, encoding: .utf8)
        let httpPort = try freePort()
        let opsPort = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "serve", "--config", configPath, "--data", directory + "/data", "--http", "127.0.0.1:\(httpPort)", "--ops",
            "127.0.0.1:\(opsPort)",
        ]
        _ = FileManager.default.createFile(atPath: directory + "/flashsaled.log", contents: nil)
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/flashsaled.log"))
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
        let daemon = SpawnedDaemon(process: process, directory: directory, httpPort: httpPort, opsPort: opsPort)
        for _ in 0..<300 {
            guard process.isRunning else { break }
            let ready = try? await AuditHTTP.with(host: "127.0.0.1", port: httpPort) { try await $0.get("/readyz").status }
            if ready == 200 { return daemon }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        try? daemon.stop()
        throw ClientError("flashsaled did not get ready; its log: \(directory)/flashsaled.log")
    }

    /// SIGTERM, then waits for the exit; the temp dir is removed when the exit is clean.
    func stop() throws {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ClientError("flashsaled exited with \(process.terminationStatus); its log: \(directory)/flashsaled.log")
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A loopback port free right now (bound to port 0, then released).
    private static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        guard let port = channel.localAddress?.port else { throw ClientError("no local port") }
        return port
    }
}
