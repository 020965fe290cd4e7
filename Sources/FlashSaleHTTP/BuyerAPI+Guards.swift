import FlashSale
import Synchronization

/// The abuse guards the buyer API applies (§3.2, §3.4): who the client is behind trusted
/// proxies, and how fast one client address may post.
public struct BuyerGuards: Sendable {
    /// The parts in force, replaced whole by a reload (a struct, not a tuple: a tuple in a
    /// generic `Mutex` costs a runtime metadata look-up at every access).
    private struct Parts {
        var trustedProxies: TrustedProxies
        var rateLimiter: RateLimiter
    }

    private final class Live: Sendable {
        let parts: Mutex<Parts>
        init(_ parts: Parts) { self.parts = Mutex(parts) }
    }

    private let live: Live

    /// The `trusted_proxies` CIDRs in force.
    public var trustedProxies: TrustedProxies { live.parts.withLock { $0.trustedProxies } }
    /// The per-IP token buckets on every buyer `POST /v1/...` but `/v1/payments/notify`.
    public var rateLimiter: RateLimiter { live.parts.withLock { $0.rateLimiter } }

    /// Guards with the given parts.
    public init(trustedProxies: TrustedProxies, rateLimiter: RateLimiter) {
        self.live = Live(Parts(trustedProxies: trustedProxies, rateLimiter: rateLimiter))
    }

    /// Guards as `config` sets them (`trusted_proxies`, `rate_limit.per_ip`).
    public init(config: SaleConfig) {
        self.init(
            trustedProxies: TrustedProxies(cidrs: config.trustedProxies),
            rateLimiter: RateLimiter(ratePerSecond: config.rateLimitPerIPRate, burst: config.rateLimitPerIPBurst))
    }

    /// Puts `config`'s proxies and rate limit in force (a reload). The buckets start full again
    /// only when the rate or the burst changed.
    public func replace(with config: SaleConfig) {
        let proxies = TrustedProxies(cidrs: config.trustedProxies)
        live.parts.withLock { parts in
            let limiter = parts.rateLimiter
            let same = limiter.ratePerSecond == config.rateLimitPerIPRate && limiter.burst == config.rateLimitPerIPBurst
            parts = Parts(
                trustedProxies: proxies,
                rateLimiter: same ? limiter : RateLimiter(ratePerSecond: config.rateLimitPerIPRate, burst: config.rateLimitPerIPBurst))
        }
    }
}

extension BuyerAPI {
    /// Stands for a peer address that does not parse (never seen from a TCP socket).
    static let unparsablePeer = ClientAddress("0.0.0.0")!

    /// The client address of `request` per §3.2 (the peer, or the right-most untrusted
    /// `X-Forwarded-For` hop behind a trusted proxy).
    func clientAddress(of request: APIRequest) -> ClientAddress {
        let peer = request.peer ?? ClientAddress(request.clientIP) ?? Self.unparsablePeer
        guard let guards else { return peer }
        return guards.trustedProxies.clientAddress(peer: peer, forwardedFor: request.forwardedFor)
    }

    /// The checks every buyer `POST /v1/...` but `/v1/payments/notify` passes before its route
    /// looks at anything, in the contract's order: the token (`401`), then the client's token
    /// bucket (`429`). `respond` runs it for every such route, new ones included; the route's
    /// own `authenticate` then hits the verifier's cache.
    func admitBuyerPost(_ request: APIRequest, client: ClientAddress) -> Result<String, Rejection> {
        let user: String
        switch authenticate(request) {
        case .success(let found): user = found
        case .failure(let rejection): return .failure(rejection)
        }
        if let guards, case .limited(let seconds) = guards.rateLimiter.take(client, nowMs: engine.clock.nowMs())
        {
            engine.stats.rejectedRateLimited.add(1, ordering: .relaxed)
            return .failure(.rateLimited(retryAfterSeconds: seconds))
        }
        return .success(user)
    }

    /// Runs `route` at most once per `user` + `Idempotency-Key` within 24 h and replays its
    /// first answer to repeats of the same request; the key with another request (method, path,
    /// body) is `422 idempotency_mismatch`; without the header it just runs `route`.
    ///
    /// `route` gets the claim to pass to the engine (so the answer is journaled with the change
    /// it reports) and returns the response. 5xx answers are not stored (a retry runs again),
    /// nor 400 and 401 (the request never reached the sale: a corrected retry is served).
    func idempotent(
        _ request: APIRequest, user: String, _ route: (IdempotencyClaim?) async -> APIResponse
    ) async -> APIResponse {
        guard let key = request.idempotencyKey else { return await route(nil) }
        guard IdempotencyStore.isValidKey(key) else { return APIResponse(rejection: Self.invalidKey) }
        let digest = IdempotencyStore.digest(method: request.method, path: request.path, body: request.body)
        let claim: IdempotencyClaim
        switch await engine.idempotency.begin(user: user, key: key, digest: digest, nowMs: engine.clock.nowMs()) {
        case .replay(let answer): return APIResponse(status: answer.status, body: answer.body)
        case .busy: return APIResponse(rejection: .overloaded(retryAfterSeconds: HTTPLimits.overloadedRetryAfterSeconds))
        case .mismatch: return APIResponse(rejection: .idempotencyMismatch)
        case .proceed(let admitted): claim = admitted
        }
        let response = await route(claim)
        finish(claim, response)
        return response
    }

    /// The refusal of a malformed `Idempotency-Key`.
    static let invalidKey = Rejection.badRequest("Idempotency-Key must be 1..\(EngineLimits.idempotencyKeyBytesMax) visible ASCII characters")

    /// Stores `response` as the first answer of `claim` (or drops the claim: 5xx, 400, 401)
    /// and hands it to the repeats waiting.
    func finish(_ claim: IdempotencyClaim, _ response: APIResponse) {
        guard response.status < 500, response.status != 400, response.status != 401 else {
            engine.idempotency.finish(claim, answer: nil)
            return
        }
        if let journaled = claim.journaledAnswer, journaled.status == response.status, journaled.body == response.body {
            engine.idempotency.finish(claim, answer: journaled)
        } else {
            // A refusal changed nothing, so its record need not be durable before the answer:
            // after a crash the repeat runs again and still changes nothing it should not.
            let answer = claim.refusal(status: response.status, body: response.body, nowMs: engine.clock.nowMs())
            _ = engine.journal?.append(.idempotentAnswer(answer))
            engine.idempotency.finish(claim, answer: answer)
        }
    }
}
