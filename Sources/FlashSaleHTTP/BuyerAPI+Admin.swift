import FlashSale
import FlashSaleJournal
import InventoryActor

/// The admin API's reads (§6, §7): the change feed and the orders, behind
/// `Authorization: Bearer <secrets.admin>`. Both read the journal's database, so what they list
/// is durable.
extension BuyerAPI {
    /// The refusal of an admin call without the admin token.
    static let adminRefusal = Rejection.unauthorized("admin API: send Authorization: Bearer <secrets.admin>")

    /// Whether `request` carries the admin token, compared in constant time (`SharedSecret`).
    func isAdmin(_ request: APIRequest) -> Bool {
        guard let adminSecret = credentials.admin, let header = request.authorization,
            case .success(let token) = BuyerTokenVerifier.bearerToken(fromAuthorization: header)
        else { return false }
        return adminSecret.matches(token)
    }

    /// `GET /v1/admin/changes?after=SEQ&limit=N` → `{"changes": [...], "next": SEQ}`.
    func listChanges(_ request: APIRequest) async -> APIResponse {
        guard isAdmin(request) else { return APIResponse(rejection: Self.adminRefusal) }
        let query: AdminQuery
        switch AdminQuery.parse(request.query, allowed: ["after", "limit"]) {
        case .success(let parsed): query = parsed
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
        let after: Int64, limit: Int
        switch (query.integer("after", 0...Int64.max, default: 0), query.integer("limit", 1...Int64(EngineLimits.changesPageMax), default: 100)) {
        case (.success(let a), .success(let l)): (after, limit) = (a, Int(l))
        case (.failure(let rejection), _), (_, .failure(let rejection)): return APIResponse(rejection: rejection)
        }
        switch await engine.changes(after: after, limit: limit) {
        case .failure(let rejection): return APIResponse(rejection: rejection)
        case .success(let changes):
            let capacity = changes.reduce(64) { $0 + $1.data.count + 96 }
            let body = JSONWriter.object(capacity: capacity) { json in
                json.array("changes") { json in
                    for change in changes { ChangeFeedJSON.write(change, into: &json) }
                }
                json.field("next", changes.last?.id ?? after)
            }
            return APIResponse(status: 200, body: body)
        }
    }

    /// `GET /v1/admin/orders?event=E&status=S&after=ID&limit=N` → `{"orders": [...], "next": ID|null}`.
    func listOrders(_ request: APIRequest) async -> APIResponse {
        guard isAdmin(request) else { return APIResponse(rejection: Self.adminRefusal) }
        let query: AdminQuery
        switch AdminQuery.parse(request.query, allowed: ["event", "status", "after", "limit"]) {
        case .success(let parsed): query = parsed
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
        var status: OrderStatus?
        if let text = query.values["status"] {
            guard let found = OrderStatus.allCases.first(where: { $0.description == text }) else {
                let names = OrderStatus.allCases.map(\.description).joined(separator: ", ")
                return APIResponse(rejection: .badRequest("status must be one of \(names)"))
            }
            status = found
        }
        var after: OrderID?
        if let text = query.values["after"] {
            guard let id = OrderID(text) else { return APIResponse(rejection: .badRequest("after must be an order id (o…)")) }
            after = id
        }
        let limit: Int
        switch query.integer("limit", 1...Int64(EngineLimits.ordersPageMax), default: 100) {
        case .success(let value): limit = Int(value)
        case .failure(let rejection): return APIResponse(rejection: rejection)
        }
        switch await engine.storedOrders(event: query.values["event"], status: status, after: after, limit: limit) {
        case .failure(let rejection): return APIResponse(rejection: rejection)
        case .success(let rows):
            let body = JSONWriter.object(capacity: 64 + rows.count * 320) { json in
                json.array("orders") { json in
                    for row in rows {
                        json.object { json in
                            json.rawField("order", json: ChangeFeedJSON.order(row.order))
                            if !row.refunds.isEmpty { json.array("refunds") { json in for txn in row.refunds { json.element(txn) } } }
                        }
                    }
                }
                // A full page may have more behind it; a short one is the end.
                if rows.count == limit, let last = rows.last {
                    json.field("next", last.order.id.description)
                } else {
                    json.nullField("next")
                }
            }
            return APIResponse(status: 200, body: body)
        }
    }
}

extension BuyerAPI {
    /// `GET /openapi.yaml`: the API's OpenAPI 3.1 description (docs/openapi.yaml).
    static let openAPIDocument = APIResponse(status: 200, body: Array(OpenAPIDocument.yaml.utf8), contentType: "application/yaml")
}

/// The query string of an admin read: `key=value` pairs, each key at most once and among those
/// the route takes, values percent-decoded.
struct AdminQuery {
    var values: [String: String] = [:]

    static func parse(_ query: String, allowed: [String]) -> Result<AdminQuery, Rejection> {
        var parsed = AdminQuery()
        guard !query.isEmpty else { return .success(parsed) }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = percentDecoded(parts[0]), let value = percentDecoded(parts.count > 1 ? parts[1] : "") else {
                return .failure(.badRequest("query is not valid percent-encoded UTF-8"))
            }
            guard allowed.contains(key) else {
                return .failure(.badRequest("unknown query parameter \(key.debugDescription); this route takes \(allowed.joined(separator: ", "))"))
            }
            guard parsed.values[key] == nil else { return .failure(.badRequest("query parameter \(key) given more than once")) }
            parsed.values[key] = value
        }
        return .success(parsed)
    }

    /// `key` as an integer in `range`; `fallback` when absent.
    func integer(_ key: String, _ range: ClosedRange<Int64>, default fallback: Int64) -> Result<Int64, Rejection> {
        guard let text = values[key] else { return .success(fallback) }
        guard let value = Int64(text), range.contains(value) else {
            return .failure(.badRequest("\(key) must be an integer in \(range.lowerBound)...\(range.upperBound)"))
        }
        return .success(value)
    }

    /// `text` with `%XX` and `+` decoded; nil when malformed or not UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
