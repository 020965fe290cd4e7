/// The first answer to a request that carried an `Idempotency-Key` (§3.4), as the
/// journal stores it and the engine replays it.
public struct IdempotentAnswer: Sendable, Equatable {
    /// The buyer (token `sub`).
    public var user: String
    /// The `Idempotency-Key` header value.
    public var key: String
    /// The HTTP status of the first answer.
    public var status: Int
    /// Its JSON body.
    public var body: [UInt8]
    /// When it was given, unix ms: it is replayed for 24 h (`JournalLimits.idempotentAnswerRetentionMs`).
    public var atMs: Int64
    /// The request the key is bound to (a digest of method, path and body, made by the
    /// engine); nil for answers stored before keys were bound, which match any request.
    public var requestDigest: String?

    /// Creates an answer.
    public init(user: String, key: String, status: Int, body: [UInt8], atMs: Int64, requestDigest: String? = nil) {
        self.requestDigest = requestDigest
        self.user = user
        self.key = key
        self.status = status
        self.body = body
        self.atMs = atMs
    }
}
