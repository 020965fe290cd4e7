/// The body of `POST /v1/events/{event}/orders`: `{"sku": S, "qty": N, "coupon": C?}`.
public struct OrderBody: Sendable, Equatable {
    /// The SKU.
    public var sku: String
    /// The quantity (range-checked later, against the item's limit).
    public var qty: Int64
    /// A coupon to redeem, if any.
    public var coupon: String?

    /// Parses a body; a body that cannot be read, or a missing or mistyped field, is `bad_request`.
    public static func parse(_ body: [UInt8]) -> Result<OrderBody, Rejection> {
        if let plain = scanPlain(body) { return .success(plain) }
        return parseTree(body)
    }

    /// `parse` through the full parser (the fallback of `scanPlain`, and its reference in tests).
    static func parseTree(_ body: [UInt8]) -> Result<OrderBody, Rejection> {
        let value: JSONValue
        do { value = try JSONParser.parse(body) } catch { return .failure(.badRequest("body is not valid JSON: \(error)")) }
        guard case .object = value else { return .failure(.badRequest("body must be a JSON object")) }
        guard let sku = value["sku"]?.stringValue else { return .failure(.badRequest("\"sku\" (string) is required")) }
        guard let qty = value["qty"]?.intValue else { return .failure(.badRequest("\"qty\" (integer) is required")) }
        var coupon: String?
        if let field = value["coupon"], !field.isNull {
            guard let text = field.stringValue else { return .failure(.badRequest("\"coupon\" must be a string")) }
            coupon = text
        }
        return .success(OrderBody(sku: sku, qty: qty, coupon: coupon))
    }

    /// The body read in one pass when it is plain (`FlatJSONScanner`): `sku` a string, `qty`
    /// an integer, `coupon` a string or null, each at most once and nothing else; nil for any
    /// other body, which `parse` then reads with the full parser.
    static func scanPlain(_ body: [UInt8]) -> OrderBody? {
        var sku: String?, qty: Int64?, coupon: String??
        let plain = body.withUnsafeBytes { bytes in
            FlatJSONScanner.scan(bytes) { key, value in
                switch value {
                case .string(let text) where FlatJSONScanner.isKey(key, "sku") && sku == nil:
                    sku = String(decoding: text, as: UTF8.self)
                case .int(let number) where FlatJSONScanner.isKey(key, "qty") && qty == nil:
                    qty = number
                case .string(let text) where FlatJSONScanner.isKey(key, "coupon") && coupon == nil:
                    coupon = .some(String(decoding: text, as: UTF8.self))
                case .null where FlatJSONScanner.isKey(key, "coupon") && coupon == nil:
                    coupon = .some(nil)
                default:
                    return false
                }
                return true
            }
        }
        guard plain, let sku, let qty else { return nil }
        return OrderBody(sku: sku, qty: qty, coupon: coupon ?? nil)
    }
}

/// The body of `POST /v1/payments/notify`: `{"order": O, "transaction": T, "amount": A}`.
public struct PaymentNotification: Sendable, Equatable {

    /// The order id.
    public var order: String
    /// The provider's transaction id.
    public var transaction: String
    /// Amount paid, fen.
    public var amountFen: Int64

    /// Parses a body; anything unreadable or mistyped is `bad_request`.
    public static func parse(_ body: [UInt8]) -> Result<(order: String, transaction: String, amountFen: Int64), Rejection> {
        let value: JSONValue
        do { value = try JSONParser.parse(body) } catch { return .failure(.badRequest("body is not valid JSON: \(error)")) }
        guard case .object = value else { return .failure(.badRequest("body must be a JSON object")) }
        guard let order = value["order"]?.stringValue else { return .failure(.badRequest("\"order\" (string) is required")) }
        guard let transaction = value["transaction"]?.stringValue,
            !transaction.isEmpty, transaction.utf8.count <= EngineLimits.paymentTransactionBytesMax
        else { return .failure(.badRequest("\"transaction\" (string, 1..\(EngineLimits.paymentTransactionBytesMax) bytes) is required")) }
        guard let amount = value["amount"]?.intValue else { return .failure(.badRequest("\"amount\" (integer fen) is required")) }
        return .success((order, transaction, amount))
    }
}

/// The body of `POST /v1/events/{event}/groups`: `{"sku": S}`.
public struct GroupBody: Sendable, Equatable {
    /// The SKU.
    public var sku: String

    /// Parses a body; a body that cannot be read, or a missing or mistyped `sku`, is `bad_request`.
    public static func parse(_ body: [UInt8]) -> Result<GroupBody, Rejection> {
        let value: JSONValue
        do { value = try JSONParser.parse(body) } catch { return .failure(.badRequest("body is not valid JSON: \(error)")) }
        guard case .object = value else { return .failure(.badRequest("body must be a JSON object")) }
        guard let sku = value["sku"]?.stringValue else { return .failure(.badRequest("\"sku\" (string) is required")) }
        return .success(GroupBody(sku: sku))
    }
}
