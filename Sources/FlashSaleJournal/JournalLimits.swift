/// The journal's bounds and retention periods, in one place.
public enum JournalLimits {
    /// Newest idempotent answers read back at recovery, answers: the idempotency store's
    /// default bound (a day of keyed orders at a flash sale's pace).
    public static let idempotentAnswersReadMax = 200_000
    /// How long an idempotent answer is kept, ms: the contract's 24 h replay window.
    public static let idempotentAnswerRetentionMs: Int64 = 24 * 3_600_000
    /// How far behind the newest nonce's expiry a nonce row is purged, s: twice the payment
    /// timestamp skew the contract allows (300 s), so a row is never purged while a
    /// notification carrying it could still be accepted.
    public static let noncePurgeLagSeconds: Int64 = 600
}
