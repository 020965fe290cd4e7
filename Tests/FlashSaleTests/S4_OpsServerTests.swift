import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import FlashSaleTestKit
import Synchronization
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleOps
@testable import FlashSaleJournal
@testable import InventoryActor

/// A raw line client for the ops port: bytes out, lines in.
final class OpsTestClient: @unchecked Sendable {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var pending: [UInt8] = []

    private init(inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Connects to the ops port and runs `body` on the connection.
    static func with<R: Sendable>(port: Int, _ body: (OpsTestClient) async throws -> R) async throws -> R {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(OpsTestClient(inbound: inbound.makeAsyncIterator(), outbound: outbound))
        }
    }

    /// Sends raw bytes.
    func send(bytes: [UInt8]) async throws { try await outbound.write(ByteBuffer(bytes: bytes)) }

    /// Sends raw text.
    func send(_ text: String) async throws { try await outbound.write(ByteBuffer(string: text)) }

    /// Half-closes: no more bytes from this side (`nc -N`).
    func finishSending() { outbound.finish() }

    /// The next line without its `\n`; nil once the server closed.
    func readLine() async throws -> String? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            guard var buffer = try await inbound.next() else { return nil }
            pending += buffer.readBytes(length: buffer.readableBytes) ?? []
        }
    }

    /// Sends `line` and returns the one-line reply.
    func command(_ line: String) async throws -> String {
        try await send(line + "\n")
        return try await readLine() ?? "<closed>"
    }

    /// Sends a listing command; returns the lines between `OK` and `END` (or the error line).
    func list(_ line: String) async throws -> [String] {
        try await send(line + "\n")
        let first = try await readLine() ?? "<closed>"
        guard first == "OK" else { return [first] }
        var lines: [String] = []
        while let next = try await readLine(), next != "END" { lines.append(next) }
        return lines
    }
}

/// An engine with the ops server on port 0, wired as the daemon wires it.
struct OpsWorld {
    static let nowMs: Int64 = 1_795_000_000_000
    let world: TestEngine
    let server: OpsServer
    let port: Int
    let metrics: FlashSaleMetrics

    static func start(
        directory: TemporaryDirectory, stock: Int64 = 10, idleTimeout: TimeAmount = .seconds(600), logger: Logger = TestEngine.logger
    ) async throws -> OpsWorld {
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: nowMs, stock: stock)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: nowMs))
        let hub = StockWatchHub()
        let metrics = FlashSaleMetrics()
        await world.engine.inventory.setObserver(StockObserverFanout([hub, metrics]))
        let server = OpsServer(engine: world.engine, watchHub: hub, opsSecret: TestSecrets.ops, idleTimeout: idleTimeout, logger: logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        return OpsWorld(world: world, server: server, port: port, metrics: metrics)
    }

    func stop() async {
        await server.shutdown()
        await world.stop()
    }
}

/// The ops server on a real socket, fed raw bytes.
@Suite(.timeLimit(.minutes(1))) struct OpsServerTests {
    @Test func readCommandsAnswerFromTheOwningShards() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ops = try await OpsWorld.start(directory: directory)
        let placed = await ops.world.order("u1")
        let orderID = try #require(placed.json["order"]?.stringValue)
        let http = await ops.world.api.respond(to: APIRequest(method: "GET", path: "/v1/events/e1"))
        let item = http.json["items"]?[0]
        try await OpsTestClient.with(port: ops.port) { (ops: OpsTestClient) async throws -> Void in
            #expect(try await ops.command("PING") == "OK PONG")
            #expect(try await ops.command("ping") == "OK PONG")
            #expect(try await ops.command("STOCK A1") == "OK sku=A1 total=10 available=9 reserved=1 sold=0")
            #expect(try await ops.command("STOCK A1 e1") == "OK sku=A1 total=10 available=9 reserved=1 sold=0")
            #expect(try await ops.command("STOCK ZZ").hasPrefix("ERR unknown_sku "))
            #expect(try await ops.command("STOCK A1 nope").hasPrefix("ERR unknown_event "))
            let events = try await ops.list("EVENTS")
            #expect(events.count == 1 && events[0].hasPrefix("event id=e1 kind=seckill state=live starts_at="), "\(events)")
            let event = try await ops.list("EVENT e1")
            #expect(event == ["event id=e1 kind=seckill state=live groups_formed=0", "item sku=A1 total=10 available=9 reserved=1 sold=0"])
            #expect(event.last == "item sku=A1 total=\(item?["total"]?.intValue ?? -1) available=\(item?["available"]?.intValue ?? -1) reserved=\(item?["reserved"]?.intValue ?? -1) sold=\(item?["sold"]?.intValue ?? -1)", "the same numbers as HTTP")
            #expect(try await ops.list("EVENT nope") .first?.hasPrefix("ERR unknown_event ") == true)
            #expect(try await ops.command("ORDER \(orderID)") == "OK order=\(orderID) user=u1 sku=A1 qty=1 status=pending amount=990 event=e1")
            #expect(try await ops.command("ORDER o999999").hasPrefix("ERR unknown_order "))
            #expect(try await ops.command("ORDER nonsense").hasPrefix("ERR unknown_order "))
            let stats = try await ops.list("STATS")
            for name in ["orders_created=1", "orders_paid=0", "orders_expired=0", "rejected_sold_out=0", "rejected_rate_limited=0",
                         "late_payments=0", "double_payments=0", "coupons_claimed=0", "groups_formed=0", "checkpoint_seq=0"] {
                #expect(stats.contains("stat " + name), "\(name) in \(stats)")
            }
            #expect(try await ops.command("SELL A1").hasPrefix("ERR unknown_command "))
            #expect(try await ops.command("STOCK").hasPrefix("ERR bad_arguments "))
            #expect(try await ops.command("PING now").hasPrefix("ERR bad_arguments "))
            #expect(try await ops.command("QUIT") == "OK bye")
            #expect(try await ops.readLine() == nil, "QUIT closes")
        }
        await ops.stop()
    }

    @Test func writeCommandsNeedAuthAndAreJournaled() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ops = try await OpsWorld.start(directory: directory)
        try await OpsTestClient.with(port: ops.port) { (client: OpsTestClient) async throws -> Void in
            for line in ["RESTOCK A1 e1 5", "PAUSE e1", "RESUME e1", "CHECKPOINT"] {
                #expect(try await client.command(line).hasPrefix("ERR auth_required "), "\(line)")
            }
            #expect(try await client.command("AUTH wrong").hasPrefix("ERR auth_failed "))
            #expect(try await client.command("AUTH \(TestSecrets.ops)") == "OK")
            #expect(try await client.command("RESTOCK A1 e1 5") == "OK sku=A1 total=15 available=15 reserved=0 sold=0 event=e1")
            #expect(try await client.command("RESTOCK A1 e1 five").hasPrefix("ERR bad_arguments "))
            #expect(try await client.command("RESTOCK A1 e1 -100").hasPrefix("ERR bad_request "))
            #expect(try await client.command("RESTOCK A1 e1 -9223372036854775808").hasPrefix("ERR bad_request "), "no overflow trap")
            #expect(try await client.command("RESTOCK A1 e1 9223372036854775807").hasPrefix("ERR bad_request "), "no overflow trap")
            #expect(try await client.command("RESTOCK ZZ e1 1").hasPrefix("ERR unknown_sku "))
            #expect(try await client.command("RESTOCK A1 nope 1").hasPrefix("ERR unknown_event "))
            #expect(try await client.command("PAUSE e1") == "OK event=e1 paused=true state=paused")
            #expect(await ops.world.order("u1").errorCode == "paused")
            #expect(try await client.command("PAUSE nope").hasPrefix("ERR unknown_event "))
            #expect(try await client.command("STOCK A1") == "OK sku=A1 total=15 available=15 reserved=0 sold=0", "a paused event still counts")
            #expect(try await client.command("CHECKPOINT") == "OK checkpoint_seq=1")
            #expect(try await client.list("STATS").contains("stat checkpoint_seq=1"))
            #expect(try await client.command("RESUME e1") == "OK event=e1 paused=false state=live")
            #expect(await ops.world.order("u1").status == 201)
            #expect(try await client.command("PAUSE e1") == "OK event=e1 paused=true state=paused")

        }
        await ops.stop()
        let recovered = try Journal.recover(directory: directory.path)
        #expect(recovered.restocks.map { "\($0.0)=\($0.1)" } == ["e1/A1=5"])
        #expect(recovered.pausedEvents == ["e1"])
        #expect(recovered.checkpointSeq == 1)
    }

    @Test func everyWriteIsLoggedWithItsDoorPeerAndResult() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let lines = LogLines()
        let ops = try await OpsWorld.start(directory: directory, logger: lines.logger(label: "ops-audit", level: .info))
        try await OpsTestClient.with(port: ops.port) { (ops: OpsTestClient) async throws -> Void in
            #expect(try await ops.command("STOCK A1").hasPrefix("OK "))
            #expect(try await ops.command("AUTH \(TestSecrets.ops)") == "OK")
            #expect(try await ops.command("RESTOCK A1 e1 5").hasPrefix("OK "))
            #expect(try await ops.command("RESTOCK A1 e1 -999").hasPrefix("ERR "))
            #expect(try await ops.command("PAUSE e1") == "OK event=e1 paused=true state=paused")
            // AUDIT lists the writes, newest last, with their door, peer and result.
            let audit = try await ops.list("AUDIT")
            #expect(audit.count == 3, "\(audit)")
            #expect(audit.map { $0.contains("door=ops") && $0.contains("peer=127.0.0.1:") } == [true, true, true])
            #expect(audit[0].hasSuffix("what=RESTOCK_A1_e1_5 result=ok"), "\(audit[0])")
            #expect(audit[1].hasSuffix("what=RESTOCK_A1_e1_-999 result=bad_request"))
            #expect(audit[2].hasSuffix("what=PAUSE_e1 result=ok"))
            #expect(try await ops.list("AUDIT 1") == [audit[2]])
            #expect(try await ops.command("AUDIT 0").hasPrefix("ERR bad_arguments "))
            #expect(try await ops.command("AUDIT x").hasPrefix("ERR bad_arguments "))
        }
        await ops.stop()
        let writes = try lines.objects().filter { $0["message"]?.stringValue == "ops write" }
        #expect(writes.map { $0["command"]?.stringValue } == ["RESTOCK", "RESTOCK", "PAUSE"], "reads and AUTH are not writes")
        #expect(writes.map { $0["arguments"]?.stringValue } == ["A1 e1 5", "A1 e1 -999", "e1"])
        #expect(writes.map { $0["result"]?.stringValue } == ["ok", "bad_request", "ok"])
        for write in writes {
            #expect(write["door"]?.stringValue == "ops")
            #expect(write["level"]?.stringValue == "info")
            #expect(write["peer"]?.stringValue?.hasPrefix("127.0.0.1:") == true, "\(String(describing: write["peer"]))")
        }
    }

    @Test func thirdFailedAuthClosesTheConnection() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ops = try await OpsWorld.start(directory: directory)
        try await OpsTestClient.with(port: ops.port) { (client: OpsTestClient) async throws -> Void in
            for _ in 1..<OpsLimits.opsAuthFailuresMax {
                #expect(try await client.command("AUTH guess").hasPrefix("ERR auth_failed "))
            }
            #expect(try await client.command("AUTH guess").hasPrefix("ERR auth_failed "))
            #expect(try await client.readLine() == nil)
        }
        await ops.stop()
    }

    @Test func overLongLineClosesOnlyItsConnection() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ops = try await OpsWorld.start(directory: directory)
        try await OpsTestClient.with(port: ops.port) { (bystander: OpsTestClient) async throws -> Void in
            #expect(try await bystander.command("PING") == "OK PONG")
            try await OpsTestClient.with(port: ops.port) { (offender: OpsTestClient) async throws -> Void in
                #expect(try await offender.command(String(repeating: "x", count: 4096)).hasPrefix("ERR unknown_command "), "4096 bytes is a line")
                try await offender.send(String(repeating: "x", count: 5000) + "\nPING\n")
                let reply = try await offender.readLine()
                #expect(reply?.hasPrefix("ERR line_too_long ") == true, "\(reply ?? "nil")")
                #expect(try await offender.readLine() == nil, "then closed; the PING after it is never answered")
            }
            #expect(try await bystander.command("STOCK A1") == "OK sku=A1 total=10 available=10 reserved=0 sold=0")
        }
        await ops.stop()
    }

    @Test func nulBytesInvalidUTF8AndCRLFKeepTheConnectionUsable() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ops = try await OpsWorld.start(directory: directory)
        try await OpsTestClient.with(port: ops.port) { (client: OpsTestClient) async throws -> Void in
            try await client.send(bytes: Array("PI".utf8) + [0] + Array("NG\n".utf8))
            #expect(try await client.readLine()?.hasPrefix("ERR bad_request ") == true)
            try await client.send(bytes: [0x53, 0xff, 0xfe, 0x0a])
            #expect(try await client.readLine()?.hasPrefix("ERR bad_request ") == true)
            #expect(try await client.command("PING\r") == "OK PONG", "CRLF")
            try await client.send("\n\nPING\n")
            #expect(try await client.readLine() == "OK PONG", "empty lines get no answer")
        }
        await ops.stop()
    }

    @Test func halfClosedClientIsStillAnswered() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ops = try await OpsWorld.start(directory: directory)
        try await OpsTestClient.with(port: ops.port) { (client: OpsTestClient) async throws -> Void in
            try await client.send("PING\nSTOCK A1\nPING")
            client.finishSending()
            #expect(try await client.readLine() == "OK PONG")
            #expect(try await client.readLine() == "OK sku=A1 total=10 available=10 reserved=0 sold=0")
            #expect(try await client.readLine() == "OK PONG", "an unterminated last line is still answered")
            #expect(try await client.readLine() == nil, "then closed")
        }
        await ops.stop()
    }

    @Test func watchReceivesChangesMadeOverHTTP() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ops = try await OpsWorld.start(directory: directory)
        let http = HTTPServer(responder: ops.world.api, logger: TestEngine.logger)
        let httpPort = try await http.start(host: "127.0.0.1", port: 0)
        let world = ops.world
        try await OpsTestClient.with(port: ops.port) { (watcher: OpsTestClient) async throws -> Void in
            #expect(try await watcher.command("WATCH ZZ").hasPrefix("ERR unknown_sku "))
            #expect(try await watcher.command("WATCH A1 nope").hasPrefix("ERR unknown_event "))
            #expect(try await watcher.command("WATCH A1 e1") == "OK")
            #expect(try await watcher.readLine() == "stock sku=A1 available=10 reserved=0 sold=0", "the state at the start")
            try await HTTPTestConnection.with(port: httpPort) { connection in
                for user in ["u1", "u2", "u3"] {
                    let response = try await connection.send(
                        .POST, "/v1/events/e1/orders", headers: [("authorization", world.bearer(user))], body: Array(#"{"sku":"A1","qty":1}"#.utf8))
                    #expect(response.status == 201)
                }
            }
            // Coalesced or not, the lines only move forward and the last state arrives.
            var seen: [String] = []
            while let line = try await watcher.readLine() {
                seen.append(line)
                if line == "stock sku=A1 available=7 reserved=3 sold=0" { break }
            }
            #expect(seen.last == "stock sku=A1 available=7 reserved=3 sold=0", "\(seen)")
            #expect(seen.count <= 3)
            #expect(try await watcher.command("PING") == "OK PONG", "other commands still work while watching")
            #expect(try await watcher.command("QUIT") == "OK bye")
        }
        await http.shutdown()
        await ops.stop()
    }

    @Test func watchWithoutEventFollowsRestocksAndExpiry() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ops = try await OpsWorld.start(directory: directory)
        try await OpsTestClient.with(port: ops.port) { (watcher: OpsTestClient) async throws -> Void in
            #expect(try await watcher.command("WATCH a1") == "ERR unknown_sku no SKU 'a1' in any event", "SKUs are case-sensitive")
            #expect(try await watcher.command("WATCH A1") == "OK")
            #expect(try await watcher.readLine() == "stock sku=A1 available=10 reserved=0 sold=0")
            #expect(await ops.world.order("u1").status == 201)
            #expect(try await watcher.readLine() == "stock sku=A1 available=9 reserved=1 sold=0")
            ops.world.clock.advance(ms: 61_000)
            #expect(await ops.world.engine.expireDue() == 1)
            #expect(try await watcher.readLine() == "stock sku=A1 available=10 reserved=0 sold=0")
            let restocked = await ops.world.engine.restock(event: "e1", sku: "A1", delta: 2)
            guard case .success(let counters) = restocked else { Issue.record("restock failed: \(restocked)"); return }
            #expect(counters.total == 12)
            #expect(try await watcher.readLine() == "stock sku=A1 available=12 reserved=0 sold=0")
        }
        await ops.stop()
    }

    @Test func idleConnectionIsClosedButAWatchingOneIsNot() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ops = try await OpsWorld.start(directory: directory, idleTimeout: .seconds(1))
        try await OpsTestClient.with(port: ops.port) { (watcher: OpsTestClient) async throws -> Void in
            #expect(try await watcher.command("WATCH A1 e1") == "OK")
            #expect(try await watcher.readLine() == "stock sku=A1 available=10 reserved=0 sold=0")
            try await OpsTestClient.with(port: ops.port) { (idle: OpsTestClient) async throws -> Void in
                // Sends nothing and waits for the server's idle timer (no sleep: the server ends the wait).
                #expect(try await idle.readLine()?.hasPrefix("ERR idle_timeout ") == true)
                #expect(try await idle.readLine() == nil)
            }
            // The watcher has been silent at least as long, and is still served.
            #expect(try await watcher.command("PING") == "OK PONG")
        }
        await ops.stop()
    }

    @Test func connectionsOverTheLimitAreRefused() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ops = try await OpsWorld.start(directory: directory)
        let port = ops.port
        try await withThrowingTaskGroup(of: Void.self) { group in
            let (admitted, admittedContinuation) = AsyncStream<Void>.makeStream()
            for _ in 0..<OpsLimits.opsConnectionsMax {
                group.addTask {
                    try await OpsTestClient.with(port: port) { (client: OpsTestClient) async throws -> Void in
                        #expect(try await client.command("PING") == "OK PONG")
                        admittedContinuation.yield()
                        // Hold the connection until the group is cancelled.
                        try? await Task.sleep(for: .seconds(60))
                    }
                }
            }
            var count = 0
            for await _ in admitted {
                count += 1
                if count == OpsLimits.opsConnectionsMax { break }
            }
            #expect(ops.server.connectionCount == OpsLimits.opsConnectionsMax)
            try await OpsTestClient.with(port: port) { (extra: OpsTestClient) async throws -> Void in
                #expect(try await extra.readLine()?.hasPrefix("ERR too_many_connections ") == true)
                #expect(try await extra.readLine() == nil)
            }
            group.cancelAll()
            try await group.waitForAll()
        }
        await ops.stop()
    }
}

/// Readiness as ops and a load balancer see it.
@Suite struct ReadinessTests {
    @Test func readyzNeedsBothListeners() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let nowMs: Int64 = 1_795_000_000_000
        let world = try await TestEngine.start(config: makeTestConfig(dataDirectory: directory.path, nowMs: nowMs), clock: ManualClock(startMs: nowMs))
        let listening = ListeningFlag(required: 2)
        let api = BuyerAPI(engine: world.engine, userTokenSecret: TestSecrets.userToken, listening: { listening.isSet })
        listening.set()
        #expect(api.respondImmediately(to: APIRequest(method: "GET", path: "/readyz"))?.status == 503)
        listening.set()
        #expect(api.respondImmediately(to: APIRequest(method: "GET", path: "/readyz"))?.status == 200)
        await world.stop()
    }
}

/// Changes asked for before recovery finishes (the ops listener opens alongside recovery).
@Suite struct EngineReadinessTests {
    @Test func writesBeforeRecoveryAreRefusedThenAcceptedOnceReady() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let nowMs: Int64 = 1_795_000_000_000
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: nowMs, journalEnabled: false)
        let engine = SaleEngine(config: config, clock: ManualClock(startMs: nowMs), journal: nil, logger: Logger(label: "test"))
        func code<T>(_ result: Result<T, Rejection>) -> String? {
            if case .failure(let rejection) = result { return rejection.code }
            return nil
        }
        #expect(code(await engine.restock(event: "e1", sku: "A1", delta: 5)) == "unavailable")
        #expect(code(await engine.setPaused("e1", true)) == "unavailable")
        #expect(code(await engine.checkpoint()) == "unavailable")
        #expect(!engine.catalog.isPaused("e1"), "a refused PAUSE changed nothing")

        await engine.recover(from: RecoveredState())
        #expect(code(await engine.restock(event: "e1", sku: "A1", delta: 5)) == nil)
        #expect(await engine.inventory.counters(LedgerKey(event: "e1", sku: "A1"))?.total == 15)
        #expect(code(await engine.setPaused("e1", true)) == nil)
        #expect(code(await engine.checkpoint()) == nil)
    }
}
