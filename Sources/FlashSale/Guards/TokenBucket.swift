/// One address's token bucket: `burst` tokens at most, refilled at `rate` per second.
///
/// A pure value: the caller supplies the time, so the arithmetic is tested without a clock.
struct TokenBucket: Sendable, Equatable {
    /// Tokens left at `updatedMs` (fractional: refill is continuous).
    var tokens: Double
    /// When `tokens` was last brought up to date, unix ms.
    var updatedMs: Int64

    /// A full bucket at `nowMs`.
    init(burst: Int, nowMs: Int64) {
        tokens = Double(burst)
        updatedMs = nowMs
    }

    /// Refills up to `nowMs`, then takes one token if there is one.
    mutating func take(nowMs: Int64, ratePerSecond: Double, burst: Int) -> RateLimitDecision {
        let elapsedMs = max(0, nowMs - updatedMs)
        tokens = min(Double(burst), tokens + Double(elapsedMs) * ratePerSecond / 1000)
        updatedMs = max(updatedMs, nowMs)
        if tokens >= 1 {
            tokens -= 1
            return .allowed
        }
        let waitSeconds = (1 - tokens) / ratePerSecond
        return .limited(retryAfterSeconds: max(1, Int(waitSeconds.rounded(.up))))
    }

    /// Whether the bucket would be full at `nowMs`: dropping it then changes no future answer.
    func isIdle(nowMs: Int64, fullRefillMs: Int64) -> Bool {
        nowMs - updatedMs >= fullRefillMs
    }
}

/// What a token bucket answered.
public enum RateLimitDecision: Sendable, Equatable {
    /// A token was taken.
    case allowed
    /// None left: retry after this many whole seconds (at least 1).
    case limited(retryAfterSeconds: Int)
}
