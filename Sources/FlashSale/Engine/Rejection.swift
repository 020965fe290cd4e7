import InventoryActor

/// Every refusal the contract names: its HTTP status, its error code and a sentence for a person.
///
/// Business outcomes (`soldOut`, `limitExceeded`...) are values of this enum, not thrown
/// errors; the HTTP adapter renders them as `{"error", "message"}`.
public enum Rejection: Error, Sendable, Equatable {
    /// Every code an order request (`POST /v1/events/{event}/orders`) can be refused with,
    /// HTTP edge included: the claim outcomes the metrics count up front.
    public static let orderCodes = [
        "unauthorized", "rate_limited", "unknown_event", "unknown_sku", "bad_request", "not_started", "ended", "paused",
        "limit_exceeded", "coupon_invalid", "sold_out", "unavailable", "overloaded", "too_large", "idempotency_mismatch",
    ]

    /// Missing, malformed, forged or expired buyer token (401).
    case unauthorized(String)
    /// Over the per-IP token bucket (429).
    case rateLimited(retryAfterSeconds: Int)
    /// No such event (404).
    case unknownEvent
    /// No such item in the event (404).
    case unknownSKU
    /// No such order, or another user's (404).
    case unknownOrder
    /// A body or field that cannot be read, or a value out of range (400).
    case badRequest(String)
    /// The sale has not started (425, with `starts_at`).
    case notStarted(startsAtMs: Int64)
    /// The sale is over (410).
    case ended
    /// Ops paused the event (503).
    case paused
    /// Past the per-user limit (409).
    case limitExceeded
    /// The coupon cannot be used (409).
    case couponInvalid(String)
    /// Not enough stock (409).
    case soldOut
    /// The order is no longer pending (409).
    case orderClosed(OrderStatus)
    /// No such group (404).
    case unknownGroup
    /// The group has `size` live members (409).
    case groupFull
    /// The group formed or failed (409).
    case groupClosed
    /// The caller already has a live order in the group (409).
    case alreadyMember
    /// No such coupon batch (404).
    case unknownBatch
    /// Every coupon of the batch is claimed (409).
    case exhausted
    /// The client IP reached the batch's `per_ip` (409).
    case ipLimitExceeded
    /// Missing or wrong payment signature (401).
    case badSignature
    /// Payment timestamp too far from now (401).
    case stale
    /// Payment nonce already seen (409).
    case replay
    /// Notified amount differs from the order's (422).
    case amountMismatch(expectedFen: Int64)
    /// Nothing can be recorded durably right now (503).
    case unavailable(String)
    /// At the in-flight cap (503).
    case overloaded(retryAfterSeconds: Int)
    /// Body over 16 KiB (413).
    case tooLarge
    /// No such endpoint (404).
    case routeNotFound
    /// Endpoint exists, method does not (405).
    case methodNotAllowed
    /// An `Idempotency-Key` already bound to a different request (method, path, body) (422).
    case idempotencyMismatch
    /// The admin API was asked to create what exists already (an event id).
    case conflict(String)

    /// The HTTP status.
    public var status: Int {
        switch self {
        case .unauthorized, .badSignature, .stale: 401
        case .rateLimited: 429
        case .unknownEvent, .unknownSKU, .unknownOrder, .unknownGroup, .unknownBatch, .routeNotFound: 404
        case .badRequest: 400
        case .notStarted: 425
        case .ended: 410
        case .paused, .unavailable, .overloaded: 503
        case .limitExceeded, .couponInvalid, .soldOut, .orderClosed, .replay: 409
        case .groupFull, .groupClosed, .alreadyMember, .exhausted, .ipLimitExceeded: 409
        case .amountMismatch, .idempotencyMismatch: 422
        case .conflict: 409
        case .tooLarge: 413
        case .methodNotAllowed: 405
        }
    }

    /// The contract's error code.
    public var code: String {
        switch self {
        case .unauthorized: "unauthorized"
        case .rateLimited: "rate_limited"
        case .unknownEvent: "unknown_event"
        case .unknownSKU: "unknown_sku"
        case .unknownOrder: "unknown_order"
        case .badRequest: "bad_request"
        case .notStarted: "not_started"
        case .ended: "ended"
        case .paused: "paused"
        case .limitExceeded: "limit_exceeded"
        case .couponInvalid: "coupon_invalid"
        case .soldOut: "sold_out"
        case .orderClosed: "order_closed"
        case .unknownGroup: "unknown_group"
        case .groupFull: "group_full"
        case .groupClosed: "group_closed"
        case .alreadyMember: "already_member"
        case .unknownBatch: "unknown_batch"
        case .exhausted: "exhausted"
        case .ipLimitExceeded: "ip_limit_exceeded"
        case .badSignature: "bad_signature"
        case .stale: "stale"
        case .replay: "replay"
        case .amountMismatch: "amount_mismatch"
        case .unavailable: "unavailable"
        case .overloaded: "overloaded"
        case .tooLarge: "too_large"
        case .routeNotFound: "not_found"
        case .methodNotAllowed: "method_not_allowed"
        case .idempotencyMismatch: "idempotency_mismatch"
        case .conflict: "conflict"
        }
    }

    /// A sentence for a person.
    public var message: String {
        switch self {
        case .unauthorized(let why): "a valid buyer token is required: \(why)"
        case .rateLimited(let seconds): "too many requests from this address; retry in \(seconds) s"
        case .unknownEvent: "no such event"
        case .unknownSKU: "no such item in this event"
        case .unknownOrder: "no such order"
        case .badRequest(let why): why
        case .notStarted: "the sale has not started yet"
        case .ended: "the sale has ended"
        case .paused: "the sale is paused; try again shortly"
        case .limitExceeded: "this would pass the per-buyer limit"
        case .couponInvalid(let why): "the coupon cannot be used: \(why)"
        case .soldOut: "sold out"
        case .orderClosed(let status): "the order is \(status) and can no longer be canceled"
        case .unknownGroup: "no such group"
        case .groupFull: "the group has all the members it needs"
        case .groupClosed: "the group has formed or failed"
        case .alreadyMember: "you are already a member of this group"
        case .unknownBatch: "no such coupon batch"
        case .exhausted: "every coupon of this batch has been claimed"
        case .ipLimitExceeded: "too many coupons of this batch claimed from this address"
        case .badSignature: "missing or invalid payment signature"
        case .stale: "payment timestamp is more than 300 s from server time"
        case .replay: "this nonce was already used"
        case .amountMismatch(let expected): "amount does not match the order (expected \(expected) fen)"
        case .unavailable(let why): "the engine cannot record changes durably right now: \(why)"
        case .overloaded: "the engine is at capacity; retry shortly"
        case .tooLarge: "request body is larger than 16 KiB"
        case .routeNotFound: "no such endpoint"
        case .methodNotAllowed: "method not allowed on this endpoint"
        case .idempotencyMismatch: "this Idempotency-Key was used for a different request (method, path or body)"
        case .conflict(let why): why
        }
    }

    /// `Retry-After` seconds, for the refusals that carry one.
    public var retryAfterSeconds: Int? {
        switch self {
        case .rateLimited(let seconds), .overloaded(let seconds): seconds
        case .paused: 1
        default: nil
        }
    }
}
