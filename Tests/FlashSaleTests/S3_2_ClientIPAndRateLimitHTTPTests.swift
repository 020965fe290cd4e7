import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import InventoryActor

/// The guards end to end: the API with its engine, and the real server on real sockets.
@Suite struct GuardsHTTPTests {
    static let nowMs: Int64 = 1_795_000_000_000
    static let orderBody = Array(#"{"sku":"A1","qty":1}"#.utf8)

    static func start(
        _ directory: TemporaryDirectory, stock: Int64 = 1_000, limitPerUser: Int32 = 2, rate: Double = 1_000_000, burst: Int = 1_000_000,
        trustedProxies: [String] = []
    ) async throws -> TestEngine {
        var config = makeTestConfig(dataDirectory: directory.path, nowMs: nowMs, stock: stock, limitPerUser: limitPerUser)
        config.rateLimitPerIPRate = rate
        config.rateLimitPerIPBurst = burst
        config.trustedProxies = trustedProxies
        return try await TestEngine.start(config: config, clock: ManualClock(startMs: nowMs))
    }

    // MARK: Rate limits over real sockets

    @Test(.timeLimit(.minutes(1))) func thirtyQuickPostsFromOneAddressPassOnlyTheBurst() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // The manual clock stands still: the bucket never refills during the test.
        let world = try await Self.start(directory, limitPerUser: 100, rate: 5, burst: 5)
        let server = HTTPServer(responder: world.api, logger: TestEngine.logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        let statuses = try await HTTPTestConnection.with(port: port, from: "127.0.0.2") { http in
            var statuses: [Int] = []
            for _ in 0..<30 {
                let response = try await http.send(.POST, "/v1/events/e1/orders", headers: [("authorization", world.bearer("u1"))], body: Self.orderBody)
                statuses.append(response.status)
                if response.status == 429 {
                    #expect(response.json["error"]?.stringValue == "rate_limited")
                    let retryAfter = response.headers.first(name: "retry-after").flatMap(Int.init)
                    #expect(retryAfter != nil && retryAfter! >= 1, "Retry-After \(String(describing: retryAfter))")
                }
            }
            // 401 comes before 429: a missing token is still told so.
            #expect(try await http.send(.POST, "/v1/events/e1/orders", body: Self.orderBody).status == 401)
            // Payment notifications are not rate limited (they fail on their signature here).
            #expect(try await http.send(.POST, "/v1/payments/notify", body: Array("{}".utf8)).status == 401)
            // Every buyer POST is limited, cancel and unknown routes included.
            #expect(try await http.send(.POST, "/v1/orders/o1/cancel", headers: [("authorization", world.bearer("u1"))]).status == 429)
            #expect(try await http.send(.POST, "/v1/nope/x", headers: [("authorization", world.bearer("u1"))]).status == 429)
            // Reads are not rate limited.
            #expect(try await http.send(.GET, "/v1/events/e1").status == 200)
            return statuses
        }
        #expect(statuses.prefix(5).allSatisfy { $0 == 201 }, "\(statuses)")
        #expect(statuses.dropFirst(5).allSatisfy { $0 == 429 }, "\(statuses)")
        // Another address has its own bucket.
        try await HTTPTestConnection.with(port: port, from: "127.0.0.3") { http in
            let response = try await http.send(.POST, "/v1/events/e1/orders", headers: [("authorization", world.bearer("u2"))], body: Self.orderBody)
            #expect(response.status == 201)
        }
        // Time refills the bucket: 1 s at 5/s is 5 more.
        world.clock.advance(ms: 1_000)
        try await HTTPTestConnection.with(port: port, from: "127.0.0.2") { http in
            var passed = 0
            for _ in 0..<8 {
                let response = try await http.send(.POST, "/v1/events/e1/orders", headers: [("authorization", world.bearer("u1"))], body: Self.orderBody)
                if response.status != 429 { passed += 1 }
            }
            #expect(passed == 5)
        }
        await server.shutdown()
        await world.stop()
    }

    @Test(.timeLimit(.minutes(1))) func spoofedForwardedForChangesNothingButATrustedProxyIsHonoured() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await Self.start(directory, limitPerUser: 100, rate: 5, burst: 5, trustedProxies: ["127.0.0.4/32", "::1/128"])
        let server = HTTPServer(responder: world.api, logger: TestEngine.logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        func post(_ http: HTTPTestConnection, xff: [String]) async throws -> Int {
            try await http.send(
                .POST, "/v1/events/e1/orders", headers: [("authorization", world.bearer("u1"))] + xff.map { ("x-forwarded-for", $0) },
                body: Self.orderBody
            ).status
        }
        // An untrusted peer: a new made-up X-Forwarded-For on every request still hits one bucket.
        try await HTTPTestConnection.with(port: port, from: "127.0.0.5") { http in
            var statuses: [Int] = []
            for index in 0..<10 { statuses.append(try await post(http, xff: ["10.0.0.\(index)"])) }
            #expect(statuses.filter { $0 == 429 }.count == 5, "\(statuses)")
        }
        // Through the trusted proxy, each forwarded client has its own bucket.
        try await HTTPTestConnection.with(port: port, from: "127.0.0.4") { http in
            var statuses: [Int] = []
            for _ in 0..<6 { statuses.append(try await post(http, xff: ["198.51.100.1"])) }
            #expect(statuses == [201, 201, 201, 201, 201, 429], "\(statuses)")
            #expect(try await post(http, xff: ["198.51.100.2"]) == 201, "another forwarded client is not limited")
            // A client that writes its own left-most hop is still itself (the right-most untrusted).
            #expect(try await post(http, xff: ["203.0.113.77, 198.51.100.1"]) == 429)
            #expect(try await post(http, xff: ["203.0.113.77", "198.51.100.1"]) == 429, "several headers")
            // Garbage answers as the proxy itself, which has a full bucket.
            #expect(try await post(http, xff: ["not-an-address"]) == 201)
        }
        await server.shutdown()
        await world.stop()
    }

    // MARK: Admission control

    /// Holds every `/v1/...` request until released; counts what it was given.
    final class GatedResponder: HTTPResponder {
        let entered = Atomic<Int>(0)
        private let gate = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

        func respondImmediately(to request: APIRequest) -> APIResponse? {
            request.path == "/healthz" ? APIResponse(status: 200, body: Array("{}".utf8)) : nil
        }

        func respond(to request: APIRequest) async -> APIResponse {
            entered.add(1, ordering: .relaxed)
            await withCheckedContinuation { continuation in
                let open = gate.withLock { gate -> Bool in
                    if !gate.open { gate.waiters.append(continuation) }
                    return gate.open
                }
                if open { continuation.resume() }
            }
            return APIResponse(status: 200, body: Array("{}".utf8))
        }

        func open() {
            let waiters = gate.withLock { gate -> [CheckedContinuation<Void, Never>] in
                gate.open = true
                defer { gate.waiters.removeAll() }
                return gate.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    @Test(.timeLimit(.minutes(1))) func atTheInflightCapNewRequestsGet503AtOnceThenServiceRecovers() async throws {
        let responder = GatedResponder()
        let server = HTTPServer(responder: responder, limits: HTTPServerLimits(inflightMax: 2), logger: TestEngine.logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<2 {
                group.addTask { try await HTTPTestConnection.with(port: port) { try await $0.send(.GET, "/v1/events").status } }
            }
            while responder.entered.load(ordering: .relaxed) < 2 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(server.inflightCount == 2)
            try await HTTPTestConnection.with(port: port) { http in
                let refused = try await http.send(.GET, "/v1/events")
                #expect(refused.status == 503 && refused.json["error"]?.stringValue == "overloaded")
                #expect(refused.headers.first(name: "retry-after").flatMap(Int.init) ?? 0 >= 1)
                #expect(try await http.send(.GET, "/healthz").status == 200, "health checks are never refused")
            }
            #expect(responder.entered.load(ordering: .relaxed) == 2, "the refused request never reached the responder")
            responder.open()
            for try await status in group { #expect(status == 200) }
        }
        #expect(server.inflightCount == 0)
        try await HTTPTestConnection.with(port: port) { http in
            let status = try await http.send(.GET, "/v1/events").status
            #expect(status == 200, "recovered")
        }
        await server.shutdown()
    }

    // MARK: Timeouts and connections

    @Test(.timeLimit(.minutes(1))) func slowlorisIsClosedWithinTheReadTimeoutWhileOthersAreServed() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await Self.start(directory)
        // Generous for a loaded 2-core CI box: the honest client must get its request in within it.
        let readTimeoutMs: Int64 = 1_000
        let server = HTTPServer(
            responder: world.api, limits: HTTPServerLimits(idleTimeoutMs: 5_000, requestReadTimeoutMs: readTimeoutMs), logger: TestEngine.logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let started = ContinuousClock.now
        enum Outcome: Sendable { case closedByServer, trickledOn, served(Int) }
        // Trickle a header line every 50 ms (each byte would reset a plain idle timer) for up
        // to 10 times the read timeout; the server must hang up within 8 times it.
        let outcomes = try await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: (Outcome, Duration).self) { group in
                group.addTask {
                    do { for try await _ in inbound {} } catch {}
                    return (.closedByServer, ContinuousClock.now - started)
                }
                group.addTask {
                    try? await outbound.write(ByteBuffer(string: "POST /v1/events/e1/orders HTTP/1.1\r\nHost: x\r\n"))
                    for index in 0..<Int(readTimeoutMs * 10 / 50) {
                        try await Task.sleep(for: .milliseconds(50))
                        do { try await outbound.write(ByteBuffer(string: "X-Slow-\(index): a\r\n")) } catch { break }
                    }
                    return (.trickledOn, ContinuousClock.now - started)
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(100))
                    let status = try await HTTPTestConnection.with(port: port) { try await $0.send(.GET, "/v1/events").status }
                    return (.served(status), ContinuousClock.now - started)
                }
                var outcomes: [(Outcome, Duration)] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
        }
        var closedAfter: Duration?
        var servedStatus: Int?
        for (outcome, elapsed) in outcomes {
            switch outcome {
            case .closedByServer: closedAfter = elapsed
            case .served(let status): servedStatus = status
            case .trickledOn: break
            }
        }
        #expect(servedStatus == 200, "another client is served meanwhile")
        #expect(closedAfter != nil && closedAfter! < .milliseconds(readTimeoutMs * 8), "slowloris held on for \(String(describing: closedAfter))")
        #expect(closedAfter != nil && closedAfter! >= .milliseconds(readTimeoutMs), "closed before its read timeout")
        await server.shutdown()
        await world.stop()
    }

    @Test(.timeLimit(.minutes(1))) func connectionsPastTheCapAreClosedAndOversizedHeadsRefused() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await Self.start(directory)
        // No probe reserve: past the cap a connection is closed at once (ResourceExhaustionTests covers the reserve).
        let server = HTTPServer(responder: world.api, limits: HTTPServerLimits(connectionsMax: 2, probeConnectionsReserve: 0), logger: TestEngine.logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        let statuses: [Int] = try await HTTPTestConnection.with(port: port) { first in
            let inner: [Int] = try await HTTPTestConnection.with(port: port) { second in
                let a = try await first.send(.GET, "/healthz").status
                let b = try await second.send(.GET, "/healthz").status
                let open = server.connectionCount
                var third = 0
                do {
                    third = try await HTTPTestConnection.with(port: port) { third in try await third.send(.GET, "/healthz").status }
                } catch {
                    third = -1
                }
                let again = try await first.send(.GET, "/healthz").status
                return [a, b, open, third, again]
            }
            return inner
        }
        // Two served, two open, the third closed unanswered, the first still served.
        #expect(statuses == [200, 200, 2, -1, 200], "\(statuses)")
        // A head over `headerBytesMax` is refused (400 and close), never buffered further.
        // The server may close while the head is still arriving, and a close with unread bytes is
        // a reset that can swallow the answer: so either the 400/431 arrives, or the connection
        // ends; what must not happen is the server waiting for more of the head.
        let oversizedHead = "GET /healthz HTTP/1.1\r\nHost: test\r\nx-filler: \(String(repeating: "a", count: HTTPLimits.headerFieldBytesMax + 1))\r\n\r\n"
        let oversized = await RawSocket.requestOffPool(port: port, oversizedHead)
        let status = RawSocket.status(oversized.response)
        #expect(status == 400 || status == 431 || (status == 0 && oversized.closed), "\(status), closed: \(oversized.closed)")
        #expect(oversized.closed, "the connection of an oversized head stayed open")
        // The server counts a connection until its side has closed: on a loaded machine the
        // three above may still be counted for a moment, and a fourth would be past the cap.
        let deadline = ContinuousClock.now + .seconds(5)
        while server.connectionCount > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try await HTTPTestConnection.with(port: port) { http in
            let status = try await http.send(.GET, "/healthz", headers: [("x-filler", String(repeating: "a", count: 1_000))]).status
            #expect(status == 200)
        }
        await server.shutdown()
        await world.stop()
    }

    @Test(.timeLimit(.minutes(1))) func anIdleConnectionIsClosedAfterTheIdleTimeout() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await Self.start(directory)
        // Long enough that a loaded 2-core CI box still connects and asks within it.
        let idleTimeoutMs: Int64 = 3_000
        let server = HTTPServer(
            responder: world.api, limits: HTTPServerLimits(idleTimeoutMs: idleTimeoutMs, requestReadTimeoutMs: 5_000), logger: TestEngine.logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        let statuses = Mutex<(first: Int?, second: Int?)>((nil, nil))
        do {
            try await HTTPTestConnection.with(port: port) { http in
                // Inside the timeout the connection is kept; quiet past it, it is closed.
                try await Task.sleep(for: .milliseconds(idleTimeoutMs / 2))
                let first = try await http.send(.GET, "/healthz").status
                statuses.withLock { $0.first = first }
                try await Task.sleep(for: .milliseconds(idleTimeoutMs + 2_000))
                let second = try? await http.send(.GET, "/healthz").status
                statuses.withLock { $0.second = second }
            }
        } catch {
            // Closing a connection the server already closed may throw; the statuses tell.
        }
        let outcome = statuses.withLock { $0 }
        #expect(outcome.first == 200, "a connection quiet for half the idle timeout is kept")
        #expect(outcome.second == nil, "the server closed the idle connection")
        // The server forgets the connection as its close completes (on its event loop).
        for _ in 0..<200 where server.connectionCount > 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(server.connectionCount == 0)
        await server.shutdown()
        await world.stop()
    }
}
