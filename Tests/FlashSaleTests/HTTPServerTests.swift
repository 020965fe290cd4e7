import Foundation
import Logging
import NIOHTTP1
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal
@testable import InventoryActor

/// The real HTTP server on a real socket (port 0).
@Suite struct HTTPServerTests {
    static let nowMs: Int64 = 1_795_000_000_000

    @Test func hundredStockThreeThousandBuyersExactlyHundredOrders() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 100, limitPerUser: 1, shards: 8)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        let server = HTTPServer(responder: world.api, logger: TestEngine.logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        let issuer = BuyerTokenIssuer(secret: TestSecrets.userToken)
        let connections = 60
        let buyersPerConnection = 50
        let outcomes = try await withThrowingTaskGroup(of: [Int: Int].self) { group in
            for connection in 0..<connections {
                group.addTask {
                    try await HTTPTestConnection.with(port: port) { http in
                        var counts: [Int: Int] = [:]
                        for buyer in 0..<buyersPerConnection {
                            let user = "buyer-\(connection)-\(buyer)"
                            let token = issuer.mint(user: user, nowSeconds: Self.nowMs / 1000, ttlSeconds: 600)
                            let response = try await http.send(
                                .POST, "/v1/events/e1/orders", headers: [("authorization", "Bearer \(token)"), ("content-type", "application/json")],
                                body: Array(#"{"sku":"A1","qty":1}"#.utf8))
                            counts[response.status, default: 0] += 1
                        }
                        return counts
                    }
                }
            }
            var total: [Int: Int] = [:]
            for try await counts in group { total.merge(counts, uniquingKeysWith: +) }
            return total
        }
        #expect(outcomes[201] == 100, "\(outcomes)")
        #expect(outcomes[409] == connections * buyersPerConnection - 100, "\(outcomes)")
        let counters = await world.engine.inventory.counters(LedgerKey(event: "e1", sku: "A1"))!
        #expect(counters == StockCounters(total: 100, available: 0, reserved: 100, sold: 0))
        await world.engine.inventory.verifyInvariants()
        await server.shutdown()
        await world.stop()
        // Every acknowledged order is on disk.
        let recovered = try Journal.recover(directory: directory.path)
        #expect(recovered.orders.count == 100)
    }

    @Test func healthReadyAndErrorsOverTheSocket() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        let server = HTTPServer(responder: world.api, logger: TestEngine.logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        try await HTTPTestConnection.with(port: port) { http in
            #expect(try await http.send(.GET, "/healthz").status == 200)
            #expect(try await http.send(.GET, "/readyz").status == 200)
            let missing = try await http.send(.GET, "/nope")
            #expect(missing.status == 404 && missing.json["error"]?.stringValue != nil)
            let huge = try await http.send(.POST, "/v1/events/e1/orders", headers: [("authorization", world.bearer("u1"))], body: Array(repeating: UInt8(ascii: "x"), count: 16 * 1024 + 1))
            #expect(huge.status == 413 && huge.json["error"]?.stringValue == "too_large")
            let afterHuge = try await http.send(.POST, "/v1/events/e1/orders", headers: [("authorization", world.bearer("u1"))], body: Array(#"{"sku":"A1","qty":1}"#.utf8))
            #expect(afterHuge.status == 201, "the connection stays usable after a 413")
            let json = try await http.send(.POST, "/v1/events/e1/orders", headers: [("authorization", world.bearer("u1"))], body: Array("{not json".utf8))
            #expect(json.status == 400)
            return ()
        }
        await server.shutdown()
        await world.stop()
    }

    @Test func readyzIsUnavailableUntilRecoveryCompletes() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs)
        let journal = try Journal(directory: directory.path, synchronous: .normal, batchMax: 64, logger: TestEngine.logger)
        let engine = SaleEngine(config: config, clock: ManualClock(startMs: Self.nowMs), journal: journal, logger: TestEngine.logger)
        let api = BuyerAPI(engine: engine, userTokenSecret: TestSecrets.userToken)
        #expect(api.respondImmediately(to: APIRequest(method: "GET", path: "/readyz"))?.status == 503)
        #expect(api.respondImmediately(to: APIRequest(method: "GET", path: "/healthz"))?.status == 200)
        let early = await api.respond(to: APIRequest(method: "GET", path: "/v1/events/e1"))
        #expect(early.status == 503)
        await engine.recover(from: try Journal.recover(directory: directory.path))
        #expect(api.respondImmediately(to: APIRequest(method: "GET", path: "/readyz"))?.status == 200)
        await journal.close()
    }
}
