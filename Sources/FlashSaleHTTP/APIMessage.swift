import FlashSale

/// A request as the buyer API sees it: what the HTTP server read, with nothing NIO-specific.
public struct APIRequest: Sendable {
    /// `GET`, `POST`, ...
    public var method: String
    /// The path, without the query string.
    public var path: String {
        didSet { route = APIRoute(path: path) }
    }
    /// The route `path` matches, found once.
    public private(set) var route: APIRoute
    /// `Authorization` header value, if any.
    public var authorization: String?
    /// `Idempotency-Key` header value, if any.
    public var idempotencyKey: String?
    /// `X-Pay-Timestamp`, `X-Pay-Nonce`, `X-Pay-Signature` header values, if any.
    public var payTimestamp: String?
    /// See `payTimestamp`.
    public var payNonce: String?
    /// See `payTimestamp`.
    public var paySignature: String?
    /// The client IP: the TCP peer as the server saw it, which `BuyerAPI` replaces with the
    /// §3.2 client IP (behind a trusted proxy, from `forwardedFor`) before any route runs.
    public var clientIP: String {
        didSet { peer = nil }
    }
    /// `clientIP` parsed, when the server had it already (once per connection); nil: parse it.
    public var peer: ClientAddress?
    /// Every `X-Forwarded-For` header value, in the order received (each may list several hops).
    public var forwardedFor: [String]
    /// The body bytes (at most `HTTPLimits.bodyBytesMax`).
    public var body: [UInt8]
    /// The query string, without its `?` (empty: none).
    public var query: String = ""

    /// Creates a request.
    public init(
        method: String, path: String, authorization: String? = nil, idempotencyKey: String? = nil,
        payTimestamp: String? = nil, payNonce: String? = nil, paySignature: String? = nil,
        clientIP: String = "127.0.0.1", forwardedFor: [String] = [], body: [UInt8] = []
    ) {
        self.forwardedFor = forwardedFor
        self.method = method
        self.path = path
        self.route = APIRoute(path: path)
        self.authorization = authorization
        self.idempotencyKey = idempotencyKey
        self.payTimestamp = payTimestamp
        self.payNonce = payNonce
        self.paySignature = paySignature
        self.clientIP = clientIP
        self.body = body
    }
}

/// A response: status, JSON (or text) body, and `Retry-After` when the contract asks for one.
public struct APIResponse: Sendable, Equatable {
    /// HTTP status code.
    public var status: Int
    /// Body bytes.
    public var body: [UInt8]
    /// `Content-Type`.
    public var contentType: String
    /// `Retry-After` in whole seconds, if any.
    public var retryAfterSeconds: Int?
    /// The contract's error code when the response is a rejection (metrics label), else nil.
    public var rejectionCode: String? = nil
    /// `Allow` (a `405`: the route's one method).
    public var allow: String? = nil
    /// `Cache-Control`, if any (the public event reads).
    public var cacheControl: String? = nil

    /// Creates a response.
    public init(
        status: Int, body: [UInt8], contentType: String = "application/json", retryAfterSeconds: Int? = nil, cacheControl: String? = nil
    ) {
        self.cacheControl = cacheControl
        self.status = status
        self.body = body
        self.contentType = contentType
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// The body as text (tests, logs).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}
