import FlashSaleJournal

/// The engine layer's bounds, in one place, each with its unit and the reason for its size:
/// what one request may carry, how big each table a flood could grow may get, and how much
/// work one step may do. (The HTTP edge has `HTTPLimits`, the ops port `OpsLimits`, the
/// journal `JournalLimits`; the config file's ranges are next to its reader in `SaleConfig`.)
public enum EngineLimits {
    // MARK: What one request may carry

    /// Longest buyer token, bytes: anything longer is `malformed` before any work.
    public static let tokenBytesMax = 4096
    /// Longest `Idempotency-Key`, bytes (visible ASCII): the contract's 64.
    public static let idempotencyKeyBytesMax = 64
    /// Longest `X-Pay-Nonce`, bytes (visible ASCII).
    public static let paymentNonceBytesMax = 64
    /// Longest payment transaction id, bytes: it is stored with the order.
    public static let paymentTransactionBytesMax = 128
    /// Largest distance between a payment notification's timestamp and server time, s: the
    /// contract's 300.
    public static let paymentTimestampSkewSecondsMax: Int64 = 300
    /// Most `X-Forwarded-For` hops examined, hops: a chain longer than any real proxy path is
    /// cut from the left (the right-most hops are the ones that count).
    public static let forwardedForHopsMax = 32

    // MARK: Tables a flood could grow

    /// Verified buyer tokens remembered, entries: about 150 bytes of text each.
    public static let verifiedTokensMax = 65_536
    /// Per-IP token buckets held, buckets: past it idle buckets go first, then an arbitrary
    /// sixteenth of a shard.
    public static let rateLimitBucketsMax = 65_536
    /// Bytes one bucket may take, bytes: the bound on the rate limiter's memory is
    /// `rateLimitBucketsMax × rateLimitBucketBytesMax`.
    public static let rateLimitBucketBytesMax = 96
    /// How often a rate-limit shard drops its idle buckets, ms.
    public static let rateLimitSweepIntervalMs: Int64 = 10_000
    /// How long a first answer to an `Idempotency-Key` is replayed, ms: the contract's 24 h.
    public static let idempotencyWindowMs: Int64 = JournalLimits.idempotentAnswerRetentionMs
    /// First answers held, answers: a day of keyed orders at a flash sale's pace; past it the
    /// oldest go first.
    public static let idempotentAnswersMax = JournalLimits.idempotentAnswersReadMax
    /// Bytes of first answers held, bytes: 200 000 answers of ~300 B with their keys.
    public static let idempotentAnswerBytesMax = 96 * 1024 * 1024
    /// Bytes counted per answer beyond its strings, bytes: dictionary slot, queue slot, headers.
    public static let idempotentAnswerOverheadBytes = 160
    /// Concurrent repeats of one key waiting for the first, requests: a flaky phone retries a
    /// few times; more is a client bug, answered `503 overloaded`.
    public static let idempotentRepeatsWaitingMax = 8
    /// Payment nonces remembered, nonces: ~5 min of notifications at 3 500/s; past it the
    /// oldest are forgotten early, which only weakens replay detection (payments are
    /// idempotent by transaction).
    public static let paymentNoncesMax = 1 << 20

    // MARK: Work per step

    /// Largest stock change one RESTOCK may make, units: far above any real sale, far below overflow.
    public static let restockUnitsMax: UInt64 = 1_000_000_000
    /// Most orders one shard expires per sweep, orders: a sweep never holds a shard long.
    public static let expiryBatchPerShard = 10_000
    /// Fresh coupon codes drawn before giving up on a claim, draws: a collision of 128 random
    /// bits is never expected, so even a second draw is a curiosity.
    public static let couponCodeDrawsMax = 4

    /// Change events deleted by one prune record (whole rows of the change log, at least one
    /// row's worth): a long backlog goes over several commits, none of them long.
    public static let changesPrunedPerRecordMax = 2_000
    /// Most changes one `GET /v1/admin/changes` returns (§6).
    public static let changesPageMax = 1_000
    /// Most orders one `GET /v1/admin/orders` returns.
    public static let ordersPageMax = 1_000
}
