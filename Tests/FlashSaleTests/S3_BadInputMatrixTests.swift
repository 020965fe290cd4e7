import Foundation
import NIOHTTP1
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import InventoryActor

/// The bad-input matrix (issue 7): every buyer endpoint × malformed JSON, wrong types, missing
/// fields, huge and negative numbers, non-ASCII and overlong ids, unknown fields, empty body →
/// the contract's status and `{"error","message"}` body, and `/healthz` still answers.
/// A few rows go over a real socket: wrong content type, duplicate headers, broken HTTP framing.
@Suite struct BadInputMatrixTests {
    static let nowMs: Int64 = 1_795_000_000_000

    /// One request and the answer the contract requires.
    struct Row: CustomTestStringConvertible, Sendable {
        var name: String
        var method = "POST"
        var path: String
        var body: String = ""
        /// nil: no Authorization header; "" : a valid token for `buyer`.
        var authorization: String? = ""
        var idempotencyKey: String?
        /// Sign the body as a payment notification (valid signature, fresh timestamp).
        var signedPayment = false
        var status: Int
        /// The error code; nil for a success row.
        var error: String?
        /// Over a real socket the HTTP decoder refuses the request first (a header field over
        /// `HTTPLimits.headerFieldBytesMax`): `400 bad_request` instead of the row's answer.
        var socketRefusesHeader = false

        var testDescription: String { name }
    }

    static let overlong = String(repeating: "x", count: 10_000)
    static let nonASCII = "%E6%89%8B%E6%9C%BA"  // "手机", percent-encoded in a path
    static let orders = "/v1/events/e1/orders"
    static let groups = "/v1/events/g1/groups"

    static let rows: [Row] = [
        // POST /v1/events/{event}/orders
        Row(name: "order: malformed JSON", path: orders, body: #"{"sku":"A1","qty":1"#, status: 400, error: "bad_request"),
        Row(name: "order: trailing garbage", path: orders, body: #"{"sku":"A1","qty":1} x"#, status: 400, error: "bad_request"),
        Row(name: "order: empty body", path: orders, body: "", status: 400, error: "bad_request"),
        Row(name: "order: JSON array", path: orders, body: "[1,2]", status: 400, error: "bad_request"),
        Row(name: "order: JSON null", path: orders, body: "null", status: 400, error: "bad_request"),
        Row(name: "order: qty as string", path: orders, body: #"{"sku":"A1","qty":"1"}"#, status: 400, error: "bad_request"),
        Row(name: "order: qty as float", path: orders, body: #"{"sku":"A1","qty":1.5}"#, status: 400, error: "bad_request"),
        Row(name: "order: sku as number", path: orders, body: #"{"sku":1,"qty":1}"#, status: 400, error: "bad_request"),
        Row(name: "order: coupon as object", path: orders, body: #"{"sku":"A1","qty":1,"coupon":{}}"#, status: 400, error: "bad_request"),
        Row(name: "order: missing qty", path: orders, body: #"{"sku":"A1"}"#, status: 400, error: "bad_request"),
        Row(name: "order: missing sku", path: orders, body: #"{"qty":1}"#, status: 400, error: "bad_request"),
        Row(name: "order: qty 0", path: orders, body: #"{"sku":"A1","qty":0}"#, status: 400, error: "bad_request"),
        Row(name: "order: qty negative", path: orders, body: #"{"sku":"A1","qty":-1}"#, status: 400, error: "bad_request"),
        Row(name: "order: qty Int64.max", path: orders, body: #"{"sku":"A1","qty":9223372036854775807}"#, status: 400, error: "bad_request"),
        Row(name: "order: qty Int64.min", path: orders, body: #"{"sku":"A1","qty":-9223372036854775808}"#, status: 400, error: "bad_request"),
        Row(name: "order: qty past Int64", path: orders, body: #"{"sku":"A1","qty":99999999999999999999999}"#, status: 400, error: "bad_request"),
        Row(name: "order: qty 1e308", path: orders, body: #"{"sku":"A1","qty":1e308}"#, status: 400, error: "bad_request"),
        Row(name: "order: qty 1e999", path: orders, body: #"{"sku":"A1","qty":1e999}"#, status: 400, error: "bad_request"),
        Row(name: "order: duplicate key", path: orders, body: #"{"sku":"A1","qty":1,"qty":1}"#, status: 400, error: "bad_request"),
        Row(name: "order: lone surrogate escape", path: orders, body: #"{"sku":"\ud800","qty":1}"#, status: 400, error: "bad_request"),
        Row(name: "order: deep nesting", path: orders, body: String(repeating: "[", count: 5_000), status: 400, error: "bad_request"),
        Row(name: "order: non-ASCII sku", path: orders, body: #"{"sku":"手机","qty":1}"#, status: 404, error: "unknown_sku"),
        Row(name: "order: overlong sku", path: orders, body: #"{"sku":"\#(String(repeating: "S", count: 10_000))","qty":1}"#, status: 404, error: "unknown_sku"),
        Row(name: "order: overlong coupon", path: orders, body: #"{"sku":"A1","qty":1,"coupon":"\#(String(repeating: "C", count: 10_000))"}"#, status: 409, error: "coupon_invalid"),
        Row(name: "order: non-ASCII event", path: "/v1/events/\(nonASCII)/orders", body: #"{"sku":"A1","qty":1}"#, status: 404, error: "unknown_event"),
        Row(name: "order: overlong event", path: "/v1/events/\(overlong)/orders", body: #"{"sku":"A1","qty":1}"#, status: 404, error: "unknown_event"),
        Row(name: "order: unreadable body to an unknown event is 400 first", path: "/v1/events/nope/orders", body: "{", status: 400, error: "bad_request"),
        Row(name: "order: unknown fields ignored", path: orders, body: #"{"sku":"A1","qty":1,"color":"red","extra":{"a":[1,2]}}"#, status: 201),
        Row(name: "order: no token", path: orders, body: #"{"sku":"A1","qty":1}"#, authorization: nil, status: 401, error: "unauthorized"),
        Row(name: "order: garbage token", path: orders, body: #"{"sku":"A1","qty":1}"#, authorization: "Bearer a.b.c", status: 401, error: "unauthorized"),
        Row(name: "order: overlong token", path: orders, body: #"{"sku":"A1","qty":1}"#, authorization: "Bearer " + overlong, status: 401, error: "unauthorized", socketRefusesHeader: true),
        Row(name: "order: non-ASCII token", path: orders, body: #"{"sku":"A1","qty":1}"#, authorization: "Bearer 手机.手机.手机", status: 401, error: "unauthorized"),
        Row(name: "order: Basic auth", path: orders, body: #"{"sku":"A1","qty":1}"#, authorization: "Basic dXNlcjpwdw==", status: 401, error: "unauthorized"),
        Row(name: "order: overlong idempotency key", path: orders, body: #"{"sku":"A1","qty":1}"#, idempotencyKey: String(repeating: "k", count: 65), status: 400, error: "bad_request"),
        Row(name: "order: non-ASCII idempotency key", path: orders, body: #"{"sku":"A1","qty":1}"#, idempotencyKey: "键", status: 400, error: "bad_request"),
        Row(name: "order: empty idempotency key", path: orders, body: #"{"sku":"A1","qty":1}"#, idempotencyKey: "", status: 400, error: "bad_request"),

        // GET /v1/orders/{order}, POST /v1/orders/{order}/cancel
        Row(name: "get order: unknown", method: "GET", path: "/v1/orders/o-unknown", status: 404, error: "unknown_order"),
        Row(name: "get order: non-ASCII", method: "GET", path: "/v1/orders/\(nonASCII)", status: 404, error: "unknown_order"),
        Row(name: "get order: overlong", method: "GET", path: "/v1/orders/\(overlong)", status: 404, error: "unknown_order"),
        Row(name: "get order: huge number id", method: "GET", path: "/v1/orders/99999999999999999999999999", status: 404, error: "unknown_order"),
        Row(name: "get order: negative id", method: "GET", path: "/v1/orders/-1", status: 404, error: "unknown_order"),
        Row(name: "get order: no token", method: "GET", path: "/v1/orders/o-unknown", authorization: nil, status: 401, error: "unauthorized"),
        Row(name: "cancel: unknown", path: "/v1/orders/o-unknown/cancel", status: 404, error: "unknown_order"),
        Row(name: "cancel: overlong", path: "/v1/orders/\(overlong)/cancel", status: 404, error: "unknown_order"),
        Row(name: "cancel: non-ASCII", path: "/v1/orders/\(nonASCII)/cancel", status: 404, error: "unknown_order"),
        Row(name: "cancel: garbage body ignored", path: "/v1/orders/o-unknown/cancel", body: "{{{", status: 404, error: "unknown_order"),
        Row(name: "cancel: no token", path: "/v1/orders/o-unknown/cancel", authorization: nil, status: 401, error: "unauthorized"),
        Row(name: "cancel: wrong method", method: "GET", path: "/v1/orders/o-unknown/cancel", status: 405, error: "method_not_allowed"),

        // POST /v1/events/{event}/groups, POST /v1/groups/{group}/join, GET /v1/groups/{group}
        Row(name: "group open: malformed JSON", path: groups, body: #"{"sku":"#, status: 400, error: "bad_request"),
        Row(name: "group open: empty body", path: groups, body: "", status: 400, error: "bad_request"),
        Row(name: "group open: sku as array", path: groups, body: #"{"sku":["G1"]}"#, status: 400, error: "bad_request"),
        Row(name: "group open: missing sku", path: groups, body: #"{}"#, status: 400, error: "bad_request"),
        Row(name: "group open: non-ASCII sku", path: groups, body: #"{"sku":"手机"}"#, status: 404, error: "unknown_sku"),
        Row(name: "group open: overlong sku", path: groups, body: #"{"sku":"\#(String(repeating: "S", count: 10_000))"}"#, status: 404, error: "unknown_sku"),
        Row(name: "group open: overlong event", path: "/v1/events/\(overlong)/groups", body: #"{"sku":"G1"}"#, status: 404, error: "unknown_event"),
        Row(name: "group open: unknown fields ignored", path: groups, body: #"{"sku":"G1","size":999,"price":-1}"#, status: 201),
        Row(name: "group open: no token", path: groups, body: #"{"sku":"G1"}"#, authorization: nil, status: 401, error: "unauthorized"),
        Row(name: "join: unknown group", path: "/v1/groups/gr-unknown/join", status: 404, error: "unknown_group"),
        Row(name: "join: overlong group", path: "/v1/groups/\(overlong)/join", status: 404, error: "unknown_group"),
        Row(name: "join: non-ASCII group", path: "/v1/groups/\(nonASCII)/join", status: 404, error: "unknown_group"),
        Row(name: "join: garbage body ignored", path: "/v1/groups/gr-unknown/join", body: "\u{0}\u{1}", status: 404, error: "unknown_group"),
        Row(name: "join: no token", path: "/v1/groups/gr-unknown/join", authorization: nil, status: 401, error: "unauthorized"),
        Row(name: "get group: unknown", method: "GET", path: "/v1/groups/gr-unknown", status: 404, error: "unknown_group"),
        Row(name: "get group: overlong", method: "GET", path: "/v1/groups/\(overlong)", status: 404, error: "unknown_group"),
        Row(name: "get group: huge number", method: "GET", path: "/v1/groups/99999999999999999999999999", status: 404, error: "unknown_group"),

        // POST /v1/coupons/{batch}/claims
        Row(name: "coupon: unknown batch", path: "/v1/coupons/nope/claims", status: 404, error: "unknown_batch"),
        Row(name: "coupon: overlong batch", path: "/v1/coupons/\(overlong)/claims", status: 404, error: "unknown_batch"),
        Row(name: "coupon: non-ASCII batch", path: "/v1/coupons/\(nonASCII)/claims", status: 404, error: "unknown_batch"),
        Row(name: "coupon: body ignored", path: "/v1/coupons/c1/claims", body: "{not json", status: 201),
        Row(name: "coupon: no token", path: "/v1/coupons/c1/claims", authorization: nil, status: 401, error: "unauthorized"),
        Row(name: "coupon: wrong method", method: "GET", path: "/v1/coupons/c1/claims", status: 405, error: "method_not_allowed"),

        // POST /v1/payments/notify (no buyer token; signature first)
        Row(name: "pay: no signature headers", path: "/v1/payments/notify", body: #"{"order":"o","transaction":"t","amount":1}"#, authorization: nil, status: 401, error: "bad_signature"),
        Row(name: "pay: malformed JSON", path: "/v1/payments/notify", body: #"{"order":"#, authorization: nil, signedPayment: true, status: 400, error: "bad_request"),
        Row(name: "pay: empty body", path: "/v1/payments/notify", body: "", authorization: nil, signedPayment: true, status: 400, error: "bad_request"),
        Row(name: "pay: amount as string", path: "/v1/payments/notify", body: #"{"order":"o","transaction":"t","amount":"1"}"#, authorization: nil, signedPayment: true, status: 400, error: "bad_request"),
        Row(name: "pay: amount past Int64", path: "/v1/payments/notify", body: #"{"order":"o","transaction":"t","amount":1e30}"#, authorization: nil, signedPayment: true, status: 400, error: "bad_request"),
        Row(name: "pay: missing transaction", path: "/v1/payments/notify", body: #"{"order":"o","amount":1}"#, authorization: nil, signedPayment: true, status: 400, error: "bad_request"),
        Row(name: "pay: overlong transaction", path: "/v1/payments/notify", body: #"{"order":"o","transaction":"\#(String(repeating: "t", count: 200))","amount":1}"#, authorization: nil, signedPayment: true, status: 400, error: "bad_request"),
        Row(name: "pay: negative amount, unknown order", path: "/v1/payments/notify", body: #"{"order":"o-nope","transaction":"t","amount":-5}"#, authorization: nil, signedPayment: true, status: 404, error: "unknown_order"),
        Row(name: "pay: non-ASCII order", path: "/v1/payments/notify", body: #"{"order":"手机","transaction":"t","amount":1}"#, authorization: nil, signedPayment: true, status: 404, error: "unknown_order"),
        Row(name: "pay: overlong order", path: "/v1/payments/notify", body: #"{"order":"\#(String(repeating: "o", count: 10_000))","transaction":"t","amount":1}"#, authorization: nil, signedPayment: true, status: 404, error: "unknown_order"),
        Row(name: "pay: unknown fields ignored", path: "/v1/payments/notify", body: #"{"order":"o-nope","transaction":"t","amount":1,"currency":"CNY"}"#, authorization: nil, signedPayment: true, status: 404, error: "unknown_order"),
        Row(name: "pay: wrong method", method: "GET", path: "/v1/payments/notify", authorization: nil, status: 405, error: "method_not_allowed"),

        // GET /v1/events, GET /v1/events/{event}
        Row(name: "event: unknown", method: "GET", path: "/v1/events/nope", authorization: nil, status: 404, error: "unknown_event"),
        Row(name: "event: overlong", method: "GET", path: "/v1/events/\(overlong)", authorization: nil, status: 404, error: "unknown_event"),
        Row(name: "event: non-ASCII", method: "GET", path: "/v1/events/\(nonASCII)", authorization: nil, status: 404, error: "unknown_event"),
        Row(name: "events: wrong method", method: "DELETE", path: "/v1/events", authorization: nil, status: 405, error: "method_not_allowed"),
        Row(name: "unknown route", method: "GET", path: "/v1/nothing/here/at/all", authorization: nil, status: 404, error: "not_found"),
        Row(name: "path outside /v1", method: "GET", path: "/../../etc/passwd", authorization: nil, status: 404, error: "not_found"),
    ]

    /// An engine with a seckill event `e1`, a group-buy event `g1` (G1, size 3) and a coupon batch `c1`.
    static func withEngine(_ body: (TestEngine) async throws -> Void) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let groupItem = ItemConfig(sku: "G1", name: "Tea set", priceFen: 8800, stock: 100, limitPerUser: 1, groupSize: 3, groupPriceFen: 5900)
        let groupEvent = EventConfig(id: "g1", kind: .groupbuy, startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 3_600_000, items: [groupItem])
        let batch = CouponBatchConfig(
            id: "c1", total: 100, valueFen: 100, minSpendFen: 0, perUser: 100, perIP: 100,
            startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 3_600_000, validForMs: 3_600_000)
        let config = makeTestConfig(
            dataDirectory: directory.path, nowMs: nowMs, stock: 100, limitPerUser: 5, events: [groupEvent], coupons: [batch])
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: nowMs))
        try await body(world)
        await world.engine.inventory.verifyInvariants()
        await world.stop()
    }

    static func request(for row: Row, in world: TestEngine) -> APIRequest {
        var request = APIRequest(method: row.method, path: row.path, body: Array(row.body.utf8))
        switch row.authorization {
        case .some(""): request.authorization = world.bearer("buyer")
        case .some(let value): request.authorization = value
        case .none: break
        }
        request.idempotencyKey = row.idempotencyKey
        if row.signedPayment {
            let timestamp = String(world.clock.nowMs() / 1000)
            let nonce = UUID().uuidString
            request.payTimestamp = timestamp
            request.payNonce = nonce
            request.paySignature = PaymentSignature(secret: TestSecrets.payment).sign(timestamp: timestamp, nonce: nonce, body: request.body)
        }
        return request
    }

    /// The contract's error body: an object with string `error` and `message`, nothing it cannot parse.
    static func expectContractAnswer(_ status: Int, _ body: [UInt8], for row: Row) {
        #expect(status == row.status, "\(row.name): \(String(decoding: body, as: UTF8.self))")
        let json = try? JSONParser.parse(body)
        #expect(json != nil, "\(row.name): the body is not JSON")
        guard let expected = row.error else { return }
        #expect(json?["error"]?.stringValue == expected, "\(row.name): \(String(decoding: body, as: UTF8.self))")
        #expect(json?["message"]?.stringValue?.isEmpty == false, "\(row.name): no message")
    }

    @Test(arguments: rows) func badInputGetsTheContractAnswer(row: Row) async throws {
        try await Self.withEngine { world in
            let response = await world.api.respond(to: Self.request(for: row, in: world))
            Self.expectContractAnswer(response.status, response.body, for: row)
            let health = world.api.respondImmediately(to: APIRequest(method: "GET", path: "/healthz"))
            #expect(health?.status == 200)
        }
    }

    /// Every row over a real socket too, then rows only a socket can send: wrong content type,
    /// duplicate headers, conflicting lengths and an unparsable request line.
    @Test func matrixOverARealSocketThenHealthz() async throws {
        try await Self.withEngine { world in
            let server = HTTPServer(responder: world.api, logger: TestEngine.logger)
            let port = try await server.start(host: "127.0.0.1", port: 0)
            // One connection per row: a row the decoder refuses closes its connection.
            for row in Self.rows where row.path.utf8.count < 4_000 {
                let request = Self.request(for: row, in: world)
                var headers: [(String, String)] = []
                if let value = request.authorization { headers.append(("authorization", value)) }
                if let value = request.idempotencyKey { headers.append(("idempotency-key", value)) }
                if let value = request.payTimestamp { headers.append(("x-pay-timestamp", value)) }
                if let value = request.payNonce { headers.append(("x-pay-nonce", value)) }
                if let value = request.paySignature { headers.append(("x-pay-signature", value)) }
                let response = try await HTTPTestConnection.with(port: port) { http in
                    try await http.send(HTTPMethod(rawValue: row.method), row.path, headers: headers, body: request.body)
                }
                var expected = row
                if row.socketRefusesHeader { (expected.status, expected.error) = (400, "bad_request") }
                Self.expectContractAnswer(response.status, response.body, for: expected)
            }
            try await HTTPTestConnection.with(port: port) { http in
                let order = Array(#"{"sku":"A1","qty":1}"#.utf8)
                let wrongType = try await http.send(
                    .POST, Self.orders, headers: [("authorization", world.bearer("ct")), ("content-type", "text/plain")], body: order)
                #expect(wrongType.status == 201, "content type is not checked: the body is JSON or it is not")
                let twoTokens = try await http.send(
                    .POST, Self.orders, headers: [("authorization", world.bearer("dup-a")), ("authorization", world.bearer("dup-b"))], body: order)
                Self.expectContractAnswer(twoTokens.status, twoTokens.body, for: Row(name: "two Authorization headers", path: "", status: 400, error: "bad_request"))
                let twoKeys = try await http.send(
                    .POST, Self.orders, headers: [("authorization", world.bearer("dup-k")), ("idempotency-key", "k1"), ("idempotency-key", "k2")], body: order)
                Self.expectContractAnswer(twoKeys.status, twoKeys.body, for: Row(name: "two Idempotency-Key headers", path: "", status: 400, error: "bad_request"))
                let health = try await http.send(.GET, "/healthz")
                #expect(health.status == 200)
            }
            // Framing errors close the connection; the answer is still the contract's JSON 400.
            for raw in [
                "POST /v1/events/e1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}{}{}{",
                "GARBAGE\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
            ] {
                let (status, body) = try Self.rawExchange(port: port, Array(raw.utf8))
                Self.expectContractAnswer(status, body, for: Row(name: "framing: \(raw.prefix(20))", path: "", status: 400, error: "bad_request"))
            }
            try await HTTPTestConnection.with(port: port) { http in
                let health = try await http.send(.GET, "/healthz")
                #expect(health.status == 200)
            }
            await server.shutdown()
        }
    }

    /// Writes `bytes` on a fresh blocking socket and reads until the peer closes; the status and body.
    static func rawExchange(port: Int, _ bytes: [UInt8]) throws -> (Int, [UInt8]) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(connected == 0)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        let text = String(decoding: received, as: UTF8.self)
        let statusLine = text.split(separator: "\r\n").first ?? ""
        let status = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        guard let split = text.range(of: "\r\n\r\n") else { return (status, []) }
        return (status, Array(text[split.upperBound...].utf8))
    }
}
