import Foundation
import NIOCore
import NIOHTTP1
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP

/// The HTTP edge follows HTTP (§3): `405` names what is allowed, `connection:
/// close` closes, the public event reads may be cached, pipelined requests are answered in
/// order, an `Idempotency-Key` is bound to its request.
@Suite struct HTTPEdgeTests {
    static let nowMs: Int64 = 1_795_000_000_000

    static func withServer(_ body: (TestEngine, Int) async throws -> Void) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(
            config: makeTestConfig(dataDirectory: directory.path, nowMs: nowMs, stock: 10, limitPerUser: 5), clock: ManualClock(startMs: nowMs))
        let server = HTTPServer(responder: world.api, logger: TestEngine.logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        try await body(world, port)
        await server.shutdown()
        await world.stop()
    }

    @Test func methodNotAllowedNamesTheRoutesMethod() async throws {
        try await Self.withServer { world, port in
            try await HTTPTestConnection.with(port: port) { http in
                for (method, path, allow) in [
                    ("PUT", "/v1/events", "GET"), ("GET", "/v1/events/e1/orders", "POST"), ("DELETE", "/v1/orders/o1", "GET"),
                    ("GET", "/v1/payments/notify", "POST"), ("POST", "/healthz", "GET"),
                ] {
                    let response = try await http.send(.init(rawValue: method), path, headers: [("authorization", world.bearer("u1"))])
                    #expect(response.status == 405 && response.json["error"]?.stringValue == "method_not_allowed", "\(method) \(path)")
                    #expect(response.headers["allow"] == [allow], "\(method) \(path): \(response.headers)")
                }
                // A path that is no route is 404, whatever the method.
                #expect(try await http.send(.GET, "/v1/nope").status == 404)
            }
        }
    }

    @Test func thePublicEventReadsMayBeCachedForOneSecond() async throws {
        try await Self.withServer { world, port in
            try await HTTPTestConnection.with(port: port) { http in
                for path in ["/v1/events", "/v1/events/e1"] {
                    let response = try await http.send(.GET, path)
                    #expect(response.status == 200 && response.headers["cache-control"] == ["public, max-age=1"], "\(path)")
                }
                // Personal answers are not.
                let order = try await http.send(
                    .POST, "/v1/events/e1/orders", headers: [("authorization", world.bearer("u1"))], body: Array(#"{"sku":"A1","qty":1}"#.utf8))
                #expect(order.status == 201 && order.headers["cache-control"].isEmpty)
            }
        }
    }

    /// `connection: close` closes once the answer is written: the client sees the end of the
    /// stream within its 3 s read (the idle timeout is 60 s).
    @Test func anAnswerSayingCloseCloses() async throws {
        try await Self.withServer { _, port in
            let exchange = await RawSocket.requestOffPool(port: port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeoutMs: 3_000)
            #expect(RawSocket.status(exchange.response) == 200 && exchange.closed, "\(exchange)")
            #expect(exchange.response.lowercased().contains("connection: close"))
            // HTTP/1.0 without keep-alive is the same.
            let old = await RawSocket.requestOffPool(port: port, "GET /healthz HTTP/1.0\r\n\r\n", timeoutMs: 3_000)
            #expect(old.response.hasPrefix("HTTP/1.0 200") && old.closed, "\(old)")
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await Self.withServer { world, port in
            let order = #"{"sku":"A1","qty":1}"#
            let pipelined =
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                + "POST /v1/events/e1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: \(world.bearer("p1"))\r\nContent-Length: \(order.utf8.count)\r\n\r\n\(order)"
                + "GET /v1/nope HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let exchange = await RawSocket.requestOffPool(port: port, pipelined, timeoutMs: 3_000)
            // Each answer starts with its status line (a body is not followed by a line break).
            let statuses = exchange.response.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            #expect(statuses == ["200", "201", "404", "200"], "\(exchange.response)")
            #expect(exchange.closed)
        }
    }

    @Test func headGetsTheHeadersWithoutTheBody() async throws {
        try await Self.withServer { _, port in
            let exchange = await RawSocket.requestOffPool(port: port, "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeoutMs: 3_000)
            #expect(RawSocket.status(exchange.response) == 405, "\(exchange.response)")
            #expect(exchange.response.hasSuffix("\r\n\r\n"), "no body after the head: \(exchange.response)")
        }
    }

    /// §3.4: the key is bound to method, path and body; another request with it is 422 and
    /// changes nothing; a 400 is not stored, so a corrected retry with the same key is served.
    @Test func anIdempotencyKeyIsBoundToItsRequest() async throws {
        try await Self.withServer { world, port in
            try await HTTPTestConnection.with(port: port) { http in
                let headers = [("authorization", world.bearer("k1")), ("idempotency-key", "tap-1")]
                let first = try await http.send(.POST, "/v1/events/e1/orders", headers: headers, body: Array(#"{"sku":"A1","qty":1}"#.utf8))
                #expect(first.status == 201)
                let again = try await http.send(.POST, "/v1/events/e1/orders", headers: headers, body: Array(#"{"sku":"A1","qty":1}"#.utf8))
                #expect(again.status == 201 && again.body == first.body)
                let other = try await http.send(.POST, "/v1/events/e1/orders", headers: headers, body: Array(#"{"sku":"A1","qty":2}"#.utf8))
                #expect(other.status == 422 && other.json["error"]?.stringValue == "idempotency_mismatch")
                let elsewhere = try await http.send(.POST, "/v1/events/e2/orders", headers: headers, body: Array(#"{"sku":"A1","qty":1}"#.utf8))
                #expect(elsewhere.status == 422)
                let fixHeaders = [("authorization", world.bearer("k1")), ("idempotency-key", "tap-2")]
                let broken = try await http.send(.POST, "/v1/events/e1/orders", headers: fixHeaders, body: Array(#"{"sku":"A1","qty":99}"#.utf8))
                #expect(broken.status == 400)
                let fixed = try await http.send(.POST, "/v1/events/e1/orders", headers: fixHeaders, body: Array(#"{"sku":"A1","qty":1}"#.utf8))
                #expect(fixed.status == 201, "a 400 is not stored: \(fixed.status)")
            }
            #expect(await world.engine.inventory.counters(.init(event: "e1", sku: "A1"))?.reserved == 2)
        }
    }
}
