import Foundation
import Logging
import NIOCore
import NIOPosix
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal
@testable import InventoryActor

/// Raw client sockets: ten thousand of them cost far less than NIO channels, and a test sees
/// exactly when the server closes one (the server never sends unasked, so a readable idle
/// socket means end of stream or a reset).
enum RawSocket {
    /// A socket connecting to 127.0.0.1:`port`; blocking ones return connected, non-blocking
    /// ones may still be connecting. -1 on failure. `receiveBufferBytes` sets `SO_RCVBUF`
    /// before the connect (a client that reads slowly, or not at all).
    static func connect(port: Int, nonBlocking: Bool = false, receiveBufferBytes: Int32? = nil) -> Int32 {
        let type = Int32(SOCK_STREAM.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { return -1 }
        if var bytes = receiveBufferBytes {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 && !(nonBlocking && errno == EINPROGRESS) {
            close(fd)
            return -1
        }
        return fd
    }

    /// Waits up to `timeoutMs` for every socket in `fds` to finish connecting; the number
    /// connected without error.
    static func awaitConnected(_ fds: [Int32], timeoutMs: Int) -> Int {
        var pending = fds.map { pollfd(fd: $0, events: Int16(POLLOUT), revents: 0) }
        var connected = 0
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        while !pending.isEmpty && ContinuousClock.now < deadline {
            guard poll(&pending, nfds_t(pending.count), 100) > 0 else { continue }
            var still: [pollfd] = []
            for entry in pending {
                guard entry.revents != 0 else {
                    still.append(pollfd(fd: entry.fd, events: Int16(POLLOUT), revents: 0))
                    continue
                }
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(entry.fd, SOL_SOCKET, SO_ERROR, &error, &length)
                if error == 0 { connected += 1 }
            }
            pending = still
        }
        return connected
    }

    /// How many of `fds` the server has closed (readable: end of stream or reset), waiting up
    /// to `waitingMs` for the first.
    static func closedCount(_ fds: [Int32], waitingMs: Int32 = 0) -> Int {
        var entries = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        guard poll(&entries, nfds_t(entries.count), waitingMs) > 0 else { return 0 }
        return entries.filter { $0.revents != 0 }.count
    }

    /// Whether the server closes `fd` within `waitingMs`.
    static func isClosed(_ fd: Int32, waitingMs: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, waitingMs) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) <= 0
    }

    /// Sends `request` on `fd` and reads until the server closes it or `timeoutMs` passes:
    /// the bytes read, and whether the server closed the connection.
    static func exchange(_ fd: Int32, _ request: String, timeoutMs: Int = 5_000) -> (response: String, closed: Bool) {
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { break }
            sent += count
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        while ContinuousClock.now < deadline {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 50) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += buffer[0..<count]
        }
        return (String(decoding: received, as: UTF8.self), false)
    }

    /// The status code of an HTTP/1.1 response's text (0 if there is none).
    static func status(_ response: String) -> Int {
        let parts = response.split(separator: " ", maxSplits: 2)
        return parts.count >= 2 ? Int(parts[1]) ?? 0 : 0
    }

    /// A one-off request on a fresh connection: the response text, closed or not.
    static func request(port: Int, _ text: String, timeoutMs: Int = 5_000) -> (response: String, closed: Bool) {
        let fd = connect(port: port)
        guard fd >= 0 else { return ("", true) }
        defer { close(fd) }
        return exchange(fd, text, timeoutMs: timeoutMs)
    }

    static func get(_ path: String) -> String { "GET \(path) HTTP/1.1\r\nHost: test\r\n\r\n" }

    /// Runs blocking socket work on a thread of its own, so that it never holds one of the
    /// (two, here) threads the async code under test needs.
    static func offPool<T: Sendable>(_ body: @Sendable @escaping () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    /// `request` without holding a cooperative thread.
    static func requestOffPool(port: Int, _ text: String, timeoutMs: Int = 5_000) async -> (response: String, closed: Bool) {
        await offPool { request(port: port, text, timeoutMs: timeoutMs) }
    }
}

/// Resource exhaustion (issue 7): idle connections never stop the probes, and every table a
/// flood can grow stays within its stated bound while the guard keeps working.
@Suite(.serialized) struct ResourceExhaustionTests {
    static let nowMs: Int64 = 1_795_000_000_000

    // MARK: Connections

    /// The probe reserve with small limits, in process, on one event loop (connections are
    /// admitted in the order they arrive), checked against the server's own counts.
    @Test(.timeLimit(.minutes(1))) func atTheConnectionCapProbesAreAnsweredFromTheReserveAndNothingElse() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs), clock: ManualClock(startMs: Self.nowMs))
        let metrics = FlashSaleMetrics()
        let api = BuyerAPI(engine: world.engine, userTokenSecret: TestSecrets.userToken, metrics: metrics)
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // The reserve's read timeout is long enough for a loaded CI box to send a request within it.
        let limits = HTTPServerLimits(connectionsMax: 3, probeConnectionsReserve: 2, probeReadTimeoutMs: 1_500)
        let server = HTTPServer(responder: MeteredResponder(api, metrics: metrics), group: loop, limits: limits, logger: TestEngine.logger)
        metrics.observe(server: server)
        let port = try await server.start(host: "127.0.0.1", port: 0)

        // Three idle clients fill the cap.
        var clients = (0..<3).map { _ in RawSocket.connect(port: port) }
        // Never close a descriptor twice: by then its number may belong to another test's file
        // (a SQLite journal running in parallel), and closing that one corrupts it.
        defer { clients.filter { $0 >= 0 }.forEach { close($0) } }
        #expect(clients.allSatisfy { $0 >= 0 })
        try await pollUntil { server.connectionCount == 3 }
        #expect(server.probeConnectionCount == 0)

        // At the cap a health check, a readiness check and a scrape are answered, one per connection.
        let health = await RawSocket.requestOffPool(port: port, RawSocket.get("/healthz"))
        #expect(RawSocket.status(health.response) == 200 && health.closed, "\(health)")
        #expect(health.response.lowercased().contains("connection: close"))
        let ready = await RawSocket.requestOffPool(port: port, RawSocket.get("/readyz"))
        #expect(RawSocket.status(ready.response) == 200 && ready.closed, "\(ready)")
        let scrape = await RawSocket.requestOffPool(port: port, RawSocket.get("/metrics"))
        #expect(RawSocket.status(scrape.response) == 200 && scrape.closed)
        #expect(MetricsTests.sample(scrape.response, FlashSaleMetrics.Name.httpConnections) == 4, "three clients and the scrape itself")
        #expect(MetricsTests.sample(scrape.response, FlashSaleMetrics.Name.httpProbeConnections) == 1)
        // Anything else on a reserve connection is 503 overloaded, then closed: the reserve is no way round the cap.
        let buyer = await RawSocket.requestOffPool(port: port, RawSocket.get("/v1/events"))
        #expect(RawSocket.status(buyer.response) == 503 && buyer.response.contains("overloaded") && buyer.closed, "\(buyer)")
        let keptAlive = await RawSocket.requestOffPool(port: port, RawSocket.get("/healthz") + RawSocket.get("/healthz"))
        #expect(keptAlive.response.components(separatedBy: "HTTP/1.1 200").count == 2, "one request per reserve connection: \(keptAlive)")

        // Two idle connections fill the reserve; the next is closed at once, unanswered.
        let squatters = (0..<2).map { _ in RawSocket.connect(port: port) }
        defer { squatters.forEach { close($0) } }
        try await pollUntil { server.probeConnectionCount == 2 }
        let refused = await RawSocket.requestOffPool(port: port, RawSocket.get("/healthz"))
        #expect(refused.response.isEmpty && refused.closed, "past the reserve: \(refused)")
        #expect(server.connectionCount == 5)
        // The squatters are dropped after the reserve's read timeout; the clients stay.
        #expect(await RawSocket.offPool { squatters.allSatisfy { RawSocket.isClosed($0, waitingMs: 10_000) } })
        try await pollUntil { server.probeConnectionCount == 0 }
        #expect(RawSocket.closedCount(clients) == 0, "idle clients within their idle timeout are kept")
        let healthAgain = await RawSocket.requestOffPool(port: port, RawSocket.get("/healthz"))
        #expect(RawSocket.status(healthAgain.response) == 200)

        // A freed client slot is a client slot again: keep-alive and every route.
        close(clients[0])
        clients[0] = -1
        try await pollUntil { server.connectionCount == 2 }
        let fd = RawSocket.connect(port: port)
        defer { close(fd) }
        try await pollUntil { server.connectionCount == 3 }
        #expect(server.probeConnectionCount == 0)
        let events = await RawSocket.offPool { RawSocket.exchange(fd, RawSocket.get("/v1/events"), timeoutMs: 2_000) }
        #expect(RawSocket.status(events.response) == 200 && !events.closed)
        await server.shutdown()
        try await loop.shutdownGracefully()
        await world.stop()
    }

    @Test func theConnectionCapIsLoweredToFitTheOpenFileLimit() {
        let production = HTTPServerLimits()
        #expect(production.connectionsMax == HTTPLimits.connectionsMax)
        #expect(production.descriptorsNeeded == 10_000 + 32 + 256)
        #expect(production.fitting(descriptorsAvailable: 20_000).connectionsMax == 10_000, "room to spare: unchanged")
        #expect(production.fitting(descriptorsAvailable: 10_288).connectionsMax == 10_000, "exactly enough")
        // systemd's default soft limit, if the hard limit cannot be raised either.
        #expect(production.fitting(descriptorsAvailable: 1_024).connectionsMax == 1_024 - 32 - 256)
        #expect(production.fitting(descriptorsAvailable: 100).connectionsMax == 1, "never below one")
        #expect(HTTPServer.admission(clients: 9_999, probes: 0, limits: production) == .client)
        #expect(HTTPServer.admission(clients: 10_000, probes: 31, limits: production) == .probe)
        #expect(HTTPServer.admission(clients: 10_000, probes: 32, limits: production) == .refused)
        // The soft limit is raised to what the daemon needs when the hard limit allows it.
        let before = OpenFileLimit.current()
        #expect(before != nil)
        if let before, before.hard >= production.descriptorsNeeded {
            #expect(OpenFileLimit.raise(to: production.descriptorsNeeded) >= production.descriptorsNeeded)
        }
    }

    /// Descriptors this process needs for the 10 000-connection test: the clients, the probes
    /// past them, and room for everything else the suite has open meanwhile.
    static let testDescriptorsNeeded = HTTPLimits.connectionsMax + HTTPLimits.probeConnectionsReserve + 1_024
    /// Whether the open-file limit could be raised far enough (raising it is the side effect).
    static let descriptorsAvailable = OpenFileLimit.raise(to: testDescriptorsNeeded) >= testDescriptorsNeeded

    /// 10 000 idle connections to the real daemon at its production limits. The daemon runs
    /// as its own process: its 10 000 server-side descriptors and this process's 10 000 client
    /// ones need not fit under one open-file limit (the hard limit here is 20 000).
    @Test(
        .enabled(if: CrashRecoveryTests.binary != nil, "build flashsaled first (swift build)"),
        .enabled(if: descriptorsAvailable, "the open-file limit cannot be raised to \(testDescriptorsNeeded) (ulimit -Hn)"),
        .timeLimit(.minutes(3)))
    func tenThousandIdleConnectionsDoNotStopHealthz() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try CrashRecoveryTests.config.write(toFile: directory.path + "/flashsale.yaml", atomically: true, encoding: .utf8)
        let port = CrashRecoveryTests.freePort()
        let daemon = try CrashRecoveryTests.Daemon(directory: directory.path, port: port)
        defer { if daemon.process.isRunning { daemon.kill(SIGKILL) } }
        try await daemon.waitReady()
        let pid = daemon.process.processIdentifier
        let rssBeforeKiB = Self.residentKiB(pid: pid)

        // 10 000 connections, in batches the accept backlog absorbs.
        let started = ContinuousClock.now
        var idle: [Int32] = []
        idle.reserveCapacity(HTTPLimits.connectionsMax)
        defer { idle.forEach { close($0) } }
        while idle.count < HTTPLimits.connectionsMax {
            let batch = (0..<min(1_000, HTTPLimits.connectionsMax - idle.count)).map { _ in RawSocket.connect(port: port, nonBlocking: true) }
            idle += batch.filter { $0 >= 0 }
            // A socket this process cannot open is a failure, not a reason to try forever.
            try #require(batch.allSatisfy { $0 >= 0 }, "socket: \(String(cString: strerror(errno)))")
            #expect(await RawSocket.offPool { RawSocket.awaitConnected(batch, timeoutMs: 30_000) } == batch.count)
            if ContinuousClock.now - started > .milliseconds(HTTPLimits.idleTimeoutMs / 3) { break }
        }
        let connectedIn = ContinuousClock.now - started
        Self.progress("\(idle.count) connected in \(connectedIn)")
        // Every check below needs the first connection still inside the daemon's 60 s idle
        // timeout at the end (≈ 5 s here normally). A box so loaded that connecting alone took
        // a third of it cannot tell "dropped while idle too long" from a fault: say so, stop.
        guard connectedIn < .milliseconds(HTTPLimits.idleTimeoutMs / 3), idle.count == HTTPLimits.connectionsMax else {
            let connected = idle.count
            idle.forEach { close($0) }
            idle.removeAll()
            daemon.kill(SIGTERM)
            // Skipped with the reason, never passed: nothing was checked.
            try Test.cancel("connecting \(connected) took \(connectedIn) (machine overloaded): the checks need every connection inside the 60 s idle timeout")
        }
        // The daemon holds them all: its gauge, read on a reserve connection, says 10 000 plus the scrape.
        var open = 0.0
        var probes = 0.0
        for _ in 0..<400 {
            let scrape = await RawSocket.requestOffPool(port: port, RawSocket.get("/metrics"))
            open = MetricsTests.sample(scrape.response, FlashSaleMetrics.Name.httpConnections) ?? -1
            probes = MetricsTests.sample(scrape.response, FlashSaleMetrics.Name.httpProbeConnections) ?? -1
            if open == Double(HTTPLimits.connectionsMax + 1) && probes == 1 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(open == Double(HTTPLimits.connectionsMax + 1) && probes == 1, "open \(open), probes \(probes)")
        Self.progress("daemon holds \(open) connections, \(probes) probe")
        #expect(RawSocket.closedCount(idle) == 0, "the daemon closed some idle connections")
        let rssWithKiB = Self.residentKiB(pid: pid)

        // Promptly = under 2 s (a correctness bound, not a benchmark: speed lives in the benchmarks).
        var latencies: [Duration] = []
        for _ in 0..<20 {
            let start = ContinuousClock.now
            let health = await RawSocket.requestOffPool(port: port, RawSocket.get("/healthz"))
            latencies.append(ContinuousClock.now - start)
            #expect(RawSocket.status(health.response) == 200, "\(health)")
        }
        latencies.sort()
        #expect(latencies.last! < .seconds(2), "slowest /healthz \(latencies.last!)")
        // A buyer at the cap gets 503 overloaded and a close, not a hang.
        let buyer = await RawSocket.requestOffPool(port: port, RawSocket.get("/v1/events"))
        #expect(RawSocket.status(buyer.response) == 503 && buyer.closed)
        // Idle connections past the cap and the reserve hold nothing for long: all dropped within the reserve's read timeout.
        let extra = (0..<(HTTPLimits.probeConnectionsReserve + 8)).map { _ in RawSocket.connect(port: port) }
        defer { extra.forEach { close($0) } }
        #expect(await RawSocket.offPool { extra.allSatisfy { RawSocket.isClosed($0, waitingMs: Int32(HTTPLimits.probeReadTimeoutMs) * 10) } })
        let healthAfter = await RawSocket.requestOffPool(port: port, RawSocket.get("/healthz"))
        #expect(RawSocket.status(healthAfter.response) == 200)
        #expect(RawSocket.closedCount(idle) == 0)
        print(
            "10 000 idle connections: connected in \(connectedIn); /healthz median \(latencies[latencies.count / 2]), max \(latencies.last!);",
            "daemon VmRSS \(rssBeforeKiB) KiB before, \(rssWithKiB) KiB with them open (+\((rssWithKiB - rssBeforeKiB) / 1024) MiB)")

        idle.forEach { close($0) }
        idle.removeAll()
        daemon.kill(SIGTERM)
        #expect(daemon.process.terminationStatus == 0, "clean stop")
    }

    // MARK: Floods of distinct keys

    /// 10× a small table, and 2× the production table (65 536 buckets; 10× takes 16 s in a debug build).
    @Test(arguments: [(64 * 64, 10), (EngineLimits.rateLimitBucketsMax, 2)])
    func aFloodOfDistinctAddressesPastTheLimiterTableStaysBoundedAndAFreshAddressGetsItsBurst(entriesMax: Int, times: Int) {
        let burst = 5
        let limiter = RateLimiter(ratePerSecond: 5, burst: burst, entriesMax: entriesMax)
        #expect(limiter.entriesMax == entriesMax)
        let flood = times * limiter.entriesMax
        var peak = 0
        for index in 0..<flood {
            // Distinct IPv4 addresses, all within one second: nothing is idle, the cap alone bounds the table.
            let v4 = UInt32(0x0A00_0000) | UInt32(index)
            let address = ClientAddress(bytes16: ClientAddress.mappedPrefix + [UInt8(v4 >> 24), UInt8(v4 >> 16 & 0xff), UInt8(v4 >> 8 & 0xff), UInt8(v4 & 0xff)])
            _ = limiter.take(address, nowMs: Self.nowMs + Int64(index * 1_000 / flood))
            if index % 4_096 == 0 { peak = max(peak, limiter.entryCount) }
        }
        peak = max(peak, limiter.entryCount)
        #expect(peak <= limiter.entriesMax, "peak \(peak) > \(limiter.entriesMax)")
        #expect(limiter.entryCount > limiter.entriesMax / 2, "the table is used, not emptied")
        #expect(limiter.tableBytes <= limiter.bytesMax, "\(limiter.tableBytes) > \(limiter.bytesMax)")
        // The guard still works: a fresh address gets exactly its burst, then 429.
        let fresh = ClientAddress("192.0.2.1")!
        let decisions = (0...burst).map { _ in limiter.take(fresh, nowMs: Self.nowMs + 1_000) }
        #expect(decisions.prefix(burst).allSatisfy { $0 == .allowed })
        #expect(decisions.last == .limited(retryAfterSeconds: 1))
    }

    @Test func aFloodOfIPv6AddressesInOneSlash64IsOneBucket() {
        let limiter = RateLimiter(ratePerSecond: 1, burst: 3)
        var allowed = 0
        for index in 0..<100_000 {
            let address = ClientAddress(bytes16: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + withUnsafeBytes(of: UInt64(index).bigEndian, Array.init))
            if limiter.take(address, nowMs: Self.nowMs) == .allowed { allowed += 1 }
        }
        #expect(limiter.entryCount == 1)
        #expect(allowed == 3, "one subscriber's /64 shares one burst")
    }

    @Test func aFloodOfTenTimesTheIdempotencyBoundKeepsItAndReplaysTheRecentKeys() async {
        let entriesMax = 16 * 64
        let store = IdempotencyStore(entriesMax: entriesMax, bytesMax: 16 * 1024 * 1024)
        let flood = 10 * entriesMax
        for index in 0..<flood {
            // One user's distinct keys and distinct users' keys, half each.
            let (user, key) = index % 2 == 0 ? ("flooder", "k\(index)") : ("u\(index)", "k")
            guard case .proceed(let claim) = await store.begin(user: user, key: key, digest: "d", nowMs: Self.nowMs) else {
                Issue.record("a new key must proceed")
                return
            }
            store.finish(claim, answer: IdempotentAnswer(user: user, key: key, status: 404, body: Array(#"{"error":"unknown_sku"}"#.utf8), atMs: Self.nowMs))
            if index % 64 == 0 { #expect(store.entryCount <= entriesMax) }
        }
        #expect(store.entryCount <= entriesMax && store.entryCount > entriesMax / 2, "\(store.entryCount)")
        // The most recent keys are still replayed (a shard drops its oldest first).
        for index in (flood - 16)..<flood {
            let (user, key) = index % 2 == 0 ? ("flooder", "k\(index)") : ("u\(index)", "k")
            guard case .replay(let answer) = await store.begin(user: user, key: key, digest: "d", nowMs: Self.nowMs + 1) else {
                Issue.record("key \(index) of \(flood) must still be replayed")
                return
            }
            #expect(answer.status == 404)
        }
    }

    @Test func theIdempotencyByteBoundHoldsAtItsDefaultWhenAnswersAreLarge() async {
        let store = IdempotencyStore()
        // 8 KiB answers: the byte bound (96 MiB) bites long before the entry bound (200 000).
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 8 * 1024)
        let perAnswer = body.count + EngineLimits.idempotentAnswerOverheadBytes
        let flood = 10 * EngineLimits.idempotentAnswerBytesMax / perAnswer
        for index in 0..<flood {
            guard case .proceed(let claim) = await store.begin(user: "flooder", key: "k\(index)", digest: "d", nowMs: Self.nowMs) else {
                Issue.record("a new key must proceed")
                return
            }
            store.finish(claim, answer: IdempotentAnswer(user: "flooder", key: "k\(index)", status: 201, body: body, atMs: Self.nowMs))
        }
        #expect(store.accountedBytes <= EngineLimits.idempotentAnswerBytesMax, "\(store.accountedBytes)")
        #expect(store.accountedBytes > EngineLimits.idempotentAnswerBytesMax / 2)
        #expect(store.entryCount < EngineLimits.idempotentAnswersMax)
        guard case .replay = await store.begin(user: "flooder", key: "k\(flood - 1)", digest: "d", nowMs: Self.nowMs + 1) else {
            Issue.record("the newest answer must be replayed")
            return
        }
    }

    @Test func recoveryReadsOnlyTheNewestIdempotentAnswers() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let journal = try Journal(directory: directory.path, synchronous: .normal, batchMax: 4_096, logger: TestEngine.logger)
        for index in 0..<1_000 {
            let answer = IdempotentAnswer(user: "flooder", key: "k\(index)", status: 404, body: Array("{}".utf8), atMs: Self.nowMs + Int64(index))
            _ = journal.append(.idempotentAnswer(answer))
        }
        await journal.close()
        let all = try Journal.recover(directory: directory.path)
        #expect(all.idempotentAnswers.count == 1_000)
        let newest = try Journal.recover(directory: directory.path, idempotentAnswersMax: 100)
        #expect(newest.idempotentAnswers.map(\.key) == (900..<1_000).map { "k\($0)" }, "the newest 100, oldest first")
    }

    @Test func aFloodOfTenTimesTheNonceCapacityKeepsItAndStillCatchesRecentReplays() {
        let capacity = 16 * 1_024
        let cache = NonceCache(windowSeconds: 300, capacity: capacity)
        let flood = 10 * capacity
        for index in 0..<flood {
            #expect(cache.insertIfAbsent("n-\(index)", nowSeconds: 1_000))
            if index % 1_024 == 0 { #expect(cache.count <= capacity) }
        }
        #expect(cache.count <= capacity && cache.count >= capacity - NonceCache.shardCount)
        #expect(!cache.insertIfAbsent("n-\(flood - 1)", nowSeconds: 1_001), "a recent nonce is still a replay")
        #expect(cache.insertIfAbsent("fresh", nowSeconds: 1_001))
    }

    @Test func theEngineNonceCacheHoldsItsProductionBound() {
        // The engine's own bound (1 048 576), flooded 1.125× (the 10× flood is the test above):
        // past it the oldest go, never more than the bound.
        let cache = NonceCache(windowSeconds: EngineLimits.paymentTimestampSkewSecondsMax, capacity: EngineLimits.paymentNoncesMax)
        let flood = EngineLimits.paymentNoncesMax + EngineLimits.paymentNoncesMax / 8
        for index in 0..<flood { _ = cache.insertIfAbsent(String(index), nowSeconds: 1_000) }
        #expect(cache.count <= EngineLimits.paymentNoncesMax && cache.count >= EngineLimits.paymentNoncesMax - NonceCache.shardCount)
        #expect(!cache.insertIfAbsent(String(flood - 1), nowSeconds: 1_001))
    }

    @Test func aFloodOfTenTimesTheTokenCacheKeepsItAndStillVerifies() {
        let cacheEntries = 16 * 32
        let verifier = BuyerTokenVerifier(secret: TestSecrets.userToken, cacheEntries: cacheEntries)
        let issuer = BuyerTokenIssuer(secret: TestSecrets.userToken)
        let nowSeconds = Self.nowMs / 1000
        for index in 0..<(10 * cacheEntries) {
            let token = issuer.mint(user: "u\(index)", nowSeconds: nowSeconds, ttlSeconds: 600)
            #expect(verifier.verify(token, nowSeconds: nowSeconds) == .success("u\(index)"))
            #expect(verifier.cachedTokenCount <= cacheEntries)
        }
        // Forged tokens never enter the cache, however many.
        let before = verifier.cachedTokenCount
        let forger = BuyerTokenIssuer(secret: "not-the-secret")
        for index in 0..<1_000 {
            #expect(verifier.verify(forger.mint(user: "x\(index)", nowSeconds: nowSeconds, ttlSeconds: 600), nowSeconds: nowSeconds) == .failure(.badSignature))
        }
        #expect(verifier.cachedTokenCount == before)
        let late = issuer.mint(user: "late", nowSeconds: nowSeconds, ttlSeconds: 600)
        #expect(verifier.verify(late, nowSeconds: nowSeconds) == .success("late"))
    }

    /// The per-user and per-IP tables of the engine grow with real claims only: a flood of
    /// refused claims from distinct users and addresses adds nothing to them.
    @Test func refusedClaimsFromDistinctUsersAndAddressesGrowNoTable() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        #expect(CouponTests.nowMs == Self.nowMs, "the batch's times are relative to it")
        let coupons = [CouponTests.batch("c1", total: 3, minSpend: 0, perUser: 1, perIP: 1)]
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 5, limitPerUser: 1, coupons: coupons)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        let key = LedgerKey(event: "e1", sku: "A1")
        for index in 0..<5 { #expect(await world.order("buyer\(index)").status == 201) }
        for index in 0..<3 { #expect(await world.claim("claimer\(index)", clientIP: "10.1.0.\(index)").status == 201) }
        #expect(await world.engine.inventory.holderCount(key) == 5)
        for index in 0..<2_000 {
            let user = "flood\(index)"
            #expect(await world.order(user).errorCode == "sold_out")
            #expect(await world.order(user, sku: "NOPE").errorCode == "unknown_sku")
            #expect(await world.order(user, qty: 2).errorCode == "bad_request")
            #expect(await world.claim(user, clientIP: "10.2.\(index / 250).\(index % 250)").errorCode == "exhausted")
        }
        #expect(await world.engine.inventory.holderCount(key) == 5, "sold-out and refused claims hold nothing")
        // The coupon tables equal what was issued (checked inside), and the batch issued 3.
        await world.engine.inventory.verifyInvariants()
        await world.engine.inventory.verifyCouponInvariants()
        #expect(await world.engine.inventory.shard(forBatch: "c1").couponsIssued("c1") == 3)
        await world.stop()
    }

    // MARK: Helpers

    /// A line on stderr while the long test runs.
    static func progress(_ text: String) {
        FileHandle.standardError.write(Data("ResourceExhaustionTests: \(text)\n".utf8))
    }

    /// A process's resident set, KiB (`VmRSS` in /proc/PID/status; 0 if unreadable).
    static func residentKiB(pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return 0
    }
}
