import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing
import FlashSaleTestKit

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal
@testable import InventoryActor

/// Secrets used by every test config.
enum TestSecrets {
    static let userToken = "test-user-secret"
    static let payment = "test-payment-secret"
    static let ops = "test-ops-password"
    static let admin = "test-admin-token-0123"

    /// The head of a config file for the real daemon: these secrets, no rate limit to speak of.
    static let configHeaderYAML = """
        secrets:
          user_token: \(userToken)
          payment: \(payment)
          ops: \(ops)
        rate_limit:
          per_ip:
            rate: 1000000
            burst: 1000000

        """
}

/// A config for tests: one live seckill event `e1` (A1: price 990, given stock and limit).
func makeTestConfig(
    dataDirectory: String, nowMs: Int64, stock: Int64 = 10, limitPerUser: Int32 = 2, paymentWindowMs: Int64 = 60_000,
    extraItems: [ItemConfig] = [], events extraEvents: [EventConfig] = [], shards: Int = 4, journalEnabled: Bool = true,
    groupWindowMs: Int64 = 3_600_000, coupons: [CouponBatchConfig] = []
) -> SaleConfig {
    let items = [ItemConfig(sku: "A1", name: "Phone case", priceFen: 990, stock: stock, limitPerUser: limitPerUser, groupSize: nil, groupPriceFen: nil)] + extraItems
    let live = EventConfig(id: "e1", kind: .seckill, startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 3_600_000, items: items)
    return SaleConfig(
        sourceName: "<test>", http: HostPort(host: "127.0.0.1", port: 0), ops: HostPort(host: "127.0.0.1", port: 0),
        dataDirectory: dataDirectory, timeZoneIdentifier: "Asia/Shanghai",
        secrets: Secrets(userToken: TestSecrets.userToken, payment: TestSecrets.payment, ops: TestSecrets.ops, admin: TestSecrets.admin),
        trustedProxies: [], rateLimitPerIPRate: 1_000_000, rateLimitPerIPBurst: 1_000_000, admissionMaxInflight: 100_000,
        paymentWindowMs: paymentWindowMs, groupWindowMs: groupWindowMs, shards: shards,
        journal: JournalConfig(enabled: journalEnabled, synchronous: .normal, batchMax: 4096, checkpointIntervalMs: 30_000),
        events: [live] + extraEvents, coupons: coupons)
}

/// An engine on a manual clock with a real journal in a temporary directory.
struct TestEngine {
    let config: SaleConfig
    let clock: ManualClock
    let engine: SaleEngine
    let api: BuyerAPI

    static let logger = Logger(label: "test")

    /// Opens (or reopens) the journal in `config.dataDirectory` and recovers from it.
    static func start(config: SaleConfig, clock: ManualClock) async throws -> TestEngine {
        let journal = config.journal.enabled
            ? try Journal(
                directory: config.dataDirectory, synchronous: .normal, batchMax: config.journal.batchMax, logger: logger,
                feed: ChangeFeedJSON(clock: clock))
            : nil
        // The shards on NIO's loops, as in the daemon: orders placed by `order` run on them.
        let engine = SaleEngine(
            config: config, clock: clock, journal: journal, logger: logger, loops: Array(MultiThreadedEventLoopGroup.singleton.makeIterator()))
        let state = journal == nil ? RecoveredState() : try Journal.recover(directory: config.dataDirectory)
        await engine.recover(from: state)
        let api = BuyerAPI(
            engine: engine, userTokenSecret: TestSecrets.userToken, guards: BuyerGuards(config: config), adminSecret: config.secrets.admin)
        return TestEngine(config: config, clock: clock, engine: engine, api: api)
    }

    /// Closes the journal (as a clean stop would, without the final checkpoint).
    func stop() async {
        await engine.journal?.close()
    }

    /// A bearer header for `user`.
    func bearer(_ user: String) -> String {
        "Bearer " + BuyerTokenIssuer(secret: TestSecrets.userToken).mint(user: user, nowSeconds: clock.nowMs() / 1000, ttlSeconds: 3600)
    }

    /// POST an order through the API (no socket), redeeming `coupon` and sending `key` as its
    /// `Idempotency-Key` if given. Read on an event loop, as the HTTP server reads it (the loops
    /// taken in turn, so a shard's claims come from its own loop and from the other), and
    /// answered there when the API takes it on the loop, else by its async path.
    func order(
        _ user: String, sku: String = "A1", qty: Int = 1, event: String = "e1", coupon: String? = nil, key: String? = nil
    ) async -> APIResponse {
        await respond(to: orderRequest(user, sku: sku, qty: qty, event: event, coupon: coupon, key: key))
    }

    /// `request` through the API (no socket), read on an event loop as the HTTP server reads
    /// it (the loops taken in turn, so a shard's requests come from its own loop and from the
    /// other), and answered there when the API takes it on the loop, else by its async path.
    func respond(to request: APIRequest) async -> APIResponse {
        let loops = engine.loops
        let loop = loops[Self.nextLoop.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
        let api = self.api
        return await withCheckedContinuation { continuation in
            loop.execute {
                let taken = api.respond(to: request, on: loop) { continuation.resume(returning: $0) }
                if !taken { Task { continuation.resume(returning: await api.respond(to: request)) } }
            }
        }
    }

    /// The request `order` sends.
    func orderRequest(
        _ user: String, sku: String = "A1", qty: Int = 1, event: String = "e1", coupon: String? = nil, key: String? = nil
    ) -> APIRequest {
        let couponField = coupon.map { #","coupon":"\#($0)""# } ?? ""
        return APIRequest(
            method: "POST", path: "/v1/events/\(event)/orders", authorization: bearer(user), idempotencyKey: key,
            body: Array(#"{"sku":"\#(sku)","qty":\#(qty)\#(couponField)}"#.utf8))
    }

    /// Which loop `order` reads the next request on.
    static let nextLoop = Atomic<Int>(0)

    /// POST a new group through the API (no socket).
    func openGroup(_ user: String, sku: String = "G1", event: String = "g1") async -> APIResponse {
        await respond(to: APIRequest(
            method: "POST", path: "/v1/events/\(event)/groups", authorization: bearer(user), body: Array(#"{"sku":"\#(sku)"}"#.utf8)))
    }

    /// POST a join through the API (no socket).
    func join(_ user: String, group: String) async -> APIResponse {
        await respond(to: APIRequest(method: "POST", path: "/v1/groups/\(group)/join", authorization: bearer(user)))
    }

    /// GET a group through the API (no socket).
    func showGroup(_ group: String, user: String = "viewer") async -> APIResponse {
        await api.respond(to: APIRequest(method: "GET", path: "/v1/groups/\(group)", authorization: bearer(user)))
    }

    /// POST a coupon claim through the API (no socket), from `clientIP`.
    func claim(_ user: String, batch: String = "c1", clientIP: String = "10.0.0.1") async -> APIResponse {
        await respond(to: APIRequest(method: "POST", path: "/v1/coupons/\(batch)/claims", authorization: bearer(user), clientIP: clientIP))
    }

    /// A signed payment notification through the API (no socket).
    func pay(order: String, transaction: String, amount: Int64, nonce: String = UUID().uuidString, timestamp: Int64? = nil, secret: String = TestSecrets.payment) async -> APIResponse {
        let body = Array(#"{"order":"\#(order)","transaction":"\#(transaction)","amount":\#(amount)}"#.utf8)
        let ts = String(timestamp ?? clock.nowMs() / 1000)
        let signature = PaymentSignature(secret: secret).sign(timestamp: ts, nonce: nonce, body: body)
        return await respond(to: APIRequest(
            method: "POST", path: "/v1/payments/notify", payTimestamp: ts, payNonce: nonce, paySignature: signature, body: body))
    }
}

extension APIResponse {
    /// The body parsed as JSON.
    var json: JSONValue { (try? JSONParser.parse(body)) ?? .null }
    /// The `error` code of an error body.
    var errorCode: String? { json["error"]?.stringValue }
}

/// A minimal HTTP/1.1 client over one keep-alive connection (tests and the crash test).
final class HTTPTestConnection: @unchecked Sendable {
    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var json: JSONValue { (try? JSONParser.parse(body)) ?? .null }
    }

    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>

    private init(inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>) {
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Connects to `host:port` (optionally from a given local address) and runs `body` on the connection.
    static func with<R: Sendable>(
        host: String = "127.0.0.1", port: Int, from localHost: String? = nil, _ body: (HTTPTestConnection) async throws -> R
    ) async throws -> R {
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let localHost { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: localHost, port: 0)) }
        let channel = try await bootstrap
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(HTTPTestConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound))
        }
    }

    /// Sends one request and reads its response.
    func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8] = []) async throws -> Response {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "host", value: "localhost")
        head.headers.add(name: "content-length", value: String(body.count))
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        // In one write: a server that refuses the head answers and closes at once, and a part
        // written after that would fail with "I/O on closed channel" before the answer is read.
        var parts: [HTTPClientRequestPart] = [.head(head)]
        if !body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        parts.append(.end(nil))
        try await outbound.write(contentsOf: parts)
        var response = Response(status: 0, headers: [:], body: [])
        while let part = try await inbound.next() {
            switch part {
            case .head(let head):
                response.status = Int(head.status.code)
                response.headers = head.headers
            case .body(var buffer):
                response.body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                return response
            }
        }
        throw HTTPTestError.closed
    }
}

enum HTTPTestError: Error { case closed }

extension SaleEngine {
    /// Order `text` as it stands (held or stored); nil when unknown or unreadable.
    func order(_ text: String) async -> Order? { (try? await findOrder(text).get()) ?? nil }

    /// Group `text` as it stands (held or stored); nil when unknown or unreadable.
    func group(_ text: String) async -> GroupView? { (try? await findGroup(text).get()) ?? nil }
}
