/// A coupon code: 128 random bits chosen by the caller, and the slot of its batch.
///
/// The randomness makes a code unguessable (the engine draws it from the system generator, so
/// this core stays deterministic); the slot routes redemption to the shard that owns the batch,
/// with no global coupon index. Shown to clients as `c` + 3 hex digits of slot + 32 hex digits.
public struct CouponCode: Hashable, Sendable, CustomStringConvertible {
    /// The slot of the batch's owner.
    public let slot: Int
    /// High 64 random bits.
    public let high: UInt64
    /// Low 64 random bits.
    public let low: UInt64

    /// Length of the client form: `c`, 3 slot digits, 32 random digits.
    static let textBytes = 36

    /// A code for a batch in `slot` with random bits `high`, `low`.
    public init(slot: Int, high: UInt64, low: UInt64) {
        precondition(slot >= 0 && slot < OrderID.slotCount, "slot out of range")
        self.slot = slot
        self.high = high
        self.low = low
    }

    /// Parses the client form; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard utf8.count == Self.textBytes, utf8[0] == UInt8(ascii: "c") else { return nil }
        var values: [UInt64] = [0, 0, 0]
        let ranges = [1..<4, 4..<20, 20..<36]
        for (index, range) in ranges.enumerated() {
            for byte in utf8[range] {
                guard let digit = hexDigit(byte) else { return nil }
                values[index] = values[index] << 4 | UInt64(digit)
            }
        }
        guard values[0] < UInt64(OrderID.slotCount) else { return nil }
        self.init(slot: Int(values[0]), high: values[1], low: values[2])
    }

    /// The client form.
    public var description: String {
        "c" + Self.hex(UInt64(slot), digits: 3) + Self.hex(high, digits: 16) + Self.hex(low, digits: 16)
    }

    private static func hex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: digits - text.count) + text
    }

    /// The slot of batch `batch`: FNV-1a 64 (stable across processes, unlike `Hasher`) of a
    /// marker byte and the id, so a batch and a SKU of the same name need not share a slot.
    public static func slot(batch: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        hash = (hash ^ 0xfe) &* 0x100_0000_01b3
        for byte in batch.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(OrderID.slotCount))
    }
}

/// The rules of one coupon batch, as the configuration gives them.
public struct CouponBatchRules: Sendable, Equatable {
    /// The batch id.
    public var id: String
    /// Most coupons ever issued.
    public var total: Int64
    /// Discount of one coupon, fen.
    public var valueFen: Int64
    /// Least order price (before discount) a coupon applies to, fen.
    public var minSpendFen: Int64
    /// Most coupons one user may claim.
    public var perUser: Int
    /// Most coupons claimed from one client IP.
    public var perIP: Int
    /// Claiming opens, unix ms.
    public var startsAtMs: Int64
    /// Claiming closes, unix ms.
    public var endsAtMs: Int64
    /// How long a claimed coupon stays spendable, ms.
    public var validForMs: Int64

    /// Creates rules.
    public init(
        id: String, total: Int64, valueFen: Int64, minSpendFen: Int64, perUser: Int, perIP: Int,
        startsAtMs: Int64, endsAtMs: Int64, validForMs: Int64
    ) {
        self.id = id
        self.total = total
        self.valueFen = valueFen
        self.minSpendFen = minSpendFen
        self.perUser = perUser
        self.perIP = perIP
        self.startsAtMs = startsAtMs
        self.endsAtMs = endsAtMs
        self.validForMs = validForMs
    }
}

/// Where a claimed coupon stands. Not stored: rebuilt at recovery from the orders naming it.
public enum CouponState: Sendable, Equatable {
    /// In its owner's hands.
    case available
    /// Held for an order being created (`order` nil until the order exists), or by a pending order.
    case held(order: OrderID?, token: UInt64)
    /// Spent by a paid order.
    case spent(OrderID)
}

/// One claimed coupon.
public struct Coupon: Sendable, Equatable {
    /// Its code.
    public let code: CouponCode
    /// Its batch id.
    public let batch: String
    /// The user who claimed it: the only one who can spend it.
    public let owner: String
    /// The client IP it was claimed from (counts toward the batch's `per_ip`).
    public let clientIP: String
    /// Discount, fen.
    public let valueFen: Int64
    /// Least order price it applies to, fen.
    public let minSpendFen: Int64
    /// Claim time, unix ms.
    public let claimedAtMs: Int64
    /// Spendable until, unix ms.
    public let expiresAtMs: Int64
    /// Where it stands.
    public var state: CouponState

    /// Creates a coupon record.
    public init(
        code: CouponCode, batch: String, owner: String, clientIP: String, valueFen: Int64, minSpendFen: Int64,
        claimedAtMs: Int64, expiresAtMs: Int64, state: CouponState = .available
    ) {
        self.code = code
        self.batch = batch
        self.owner = owner
        self.clientIP = clientIP
        self.valueFen = valueFen
        self.minSpendFen = minSpendFen
        self.claimedAtMs = claimedAtMs
        self.expiresAtMs = expiresAtMs
        self.state = state
    }
}

/// What `claim` decided, in the contract's order of checks.
public enum CouponClaimResult: Sendable, Equatable {
    /// A new coupon for the caller.
    case claimed(Coupon)
    /// No such batch in this book.
    case unknownBatch
    /// Claiming has not opened.
    case notStarted(startsAtMs: Int64)
    /// Claiming has closed.
    case ended
    /// `total` coupons issued already.
    case exhausted
    /// The user has claimed `per_user` already.
    case limitExceeded
    /// The client IP has claimed `per_ip` already.
    case ipLimitExceeded
    /// The code is already taken (the caller draws another; 2^-128 odds).
    case codeTaken
}

/// Why a coupon cannot be used on an order (all answered `coupon_invalid`).
public enum CouponInvalidReason: String, Sendable, Equatable {
    /// Unknown code, or another user's coupon (not told apart, so codes cannot be probed).
    case notYours = "it is not yours"
    /// Held by another order or spent.
    case used = "it is already used"
    /// Past its `expires_at`.
    case expired = "it has expired"
    /// The order's price is below the coupon's `min_spend`.
    case belowMinSpend = "the order is below its minimum spend"
}

/// What `hold` decided.
public enum CouponHoldResult: Sendable, Equatable {
    /// Held under `token` until bound to an order or released; the coupon's value.
    case held(token: UInt64, valueFen: Int64)
    /// Not usable.
    case invalid(CouponInvalidReason)
}

/// The coupon batches of one shard and every coupon claimed from them: claims are decided here,
/// one at a time, so no batch is issued past `total` and no coupon is held or spent twice.
///
/// Redemption is hold-then-reserve: `hold` (here) before the stock is reserved (on the SKU's
/// shard), then `bind` to the new order, or `releaseHold` if the reservation failed. A bound
/// coupon is `spend`-ed when its order is paid and `release`-d when it expires or is canceled.
public struct CouponBook: Sendable {
    struct BatchLedger: Sendable {
        let rules: CouponBatchRules
        var issued: Int64 = 0
        var claimsByUser: [String: Int] = [:]
        var claimsByIP: [String: Int] = [:]
        /// Retired: its coupons and per-user and per-IP counts left memory (`retire(batch:)`).
        var retired = false
    }

    private var batches: [String: BatchLedger] = [:]
    private var coupons: [CouponCode: Coupon] = [:]
    private var lastToken: UInt64 = 0

    /// An empty book.
    public init() {}

    /// Adds a batch, or keeps the existing one.
    public mutating func addBatch(_ rules: CouponBatchRules) {
        if batches[rules.id] == nil { batches[rules.id] = BatchLedger(rules: rules) }
    }

    /// Coupons issued from `batch` (nil: unknown batch).
    public func issued(_ batch: String) -> Int64? { batches[batch]?.issued }

    /// One coupon.
    public func coupon(_ code: CouponCode) -> Coupon? { coupons[code] }

    /// Coupons the book's table has room for without growing (tests: retirement gives memory back).
    var couponCapacity: Int { coupons.capacity }

    /// Claims a coupon of `batch` for `user` from `clientIP`, with the caller's random `code`.
    public mutating func claim(batch: String, user: String, clientIP: String, code: CouponCode, nowMs: Int64) -> CouponClaimResult {
        // Read and then write through the index: a copy of the ledger would copy its
        // per-user and per-IP tables on every claim.
        guard let index = batches.index(forKey: batch) else { return .unknownBatch }
        let rules = batches.values[index].rules
        if nowMs < rules.startsAtMs { return .notStarted(startsAtMs: rules.startsAtMs) }
        if nowMs >= rules.endsAtMs || batches.values[index].retired { return .ended }
        if batches.values[index].issued >= rules.total { return .exhausted }
        if batches.values[index].claimsByUser[user, default: 0] >= rules.perUser { return .limitExceeded }
        if batches.values[index].claimsByIP[clientIP, default: 0] >= rules.perIP { return .ipLimitExceeded }
        if coupons[code] != nil { return .codeTaken }
        let coupon = Coupon(
            code: code, batch: batch, owner: user, clientIP: clientIP, valueFen: rules.valueFen,
            minSpendFen: rules.minSpendFen, claimedAtMs: nowMs, expiresAtMs: nowMs + rules.validForMs)
        batches.values[index].issued += 1
        batches.values[index].claimsByUser[user, default: 0] += 1
        batches.values[index].claimsByIP[clientIP, default: 0] += 1
        coupons[code] = coupon
        return .claimed(coupon)
    }

    /// Holds `user`'s coupon for an order of price `spendFen` being created.
    public mutating func hold(_ code: CouponCode, user: String, spendFen: Int64, nowMs: Int64) -> CouponHoldResult {
        guard var coupon = coupons[code], coupon.owner == user else { return .invalid(.notYours) }
        guard coupon.state == .available else { return .invalid(.used) }
        guard nowMs < coupon.expiresAtMs else { return .invalid(.expired) }
        guard spendFen >= coupon.minSpendFen else { return .invalid(.belowMinSpend) }
        lastToken += 1
        coupon.state = .held(order: nil, token: lastToken)
        coupons[code] = coupon
        return .held(token: lastToken, valueFen: coupon.valueFen)
    }

    /// Binds the hold `token` to the order created with it; false if no such hold.
    @discardableResult
    public mutating func bind(_ code: CouponCode, token: UInt64, order: OrderID) -> Bool {
        guard case .held(.none, token)? = coupons[code]?.state else { return false }
        coupons[code]!.state = .held(order: order, token: token)
        return true
    }

    /// Gives back a hold whose order was never created; false if no such hold.
    @discardableResult
    public mutating func releaseHold(_ code: CouponCode, token: UInt64) -> Bool {
        guard case .held(.none, token)? = coupons[code]?.state else { return false }
        coupons[code]!.state = .available
        return true
    }

    /// `order` expired or was canceled: its coupon is back in its owner's hands. Idempotent.
    @discardableResult
    public mutating func release(_ code: CouponCode, order: OrderID) -> Bool {
        guard case .held(.some(order), _)? = coupons[code]?.state else { return false }
        coupons[code]!.state = .available
        return true
    }

    /// `order` was paid: its coupon is spent. Idempotent.
    @discardableResult
    public mutating func spend(_ code: CouponCode, order: OrderID) -> Bool {
        switch coupons[code]?.state {
        case .held(.some(order), _)?:
            coupons[code]!.state = .spent(order)
            return true
        case .spent(order)?:
            return true
        default:
            return false
        }
    }

    /// Loads a coupon from storage (recovery), in the state its orders give it. A batch unknown
    /// to the configuration is created closed, so its coupons stay spendable.
    public mutating func restore(_ coupon: Coupon) {
        precondition(coupons[coupon.code] == nil, "coupon \(coupon.code) restored twice")
        if batches[coupon.batch] == nil {
            addBatch(CouponBatchRules(id: coupon.batch, total: 0, valueFen: coupon.valueFen, minSpendFen: coupon.minSpendFen, perUser: 0, perIP: 0, startsAtMs: 0, endsAtMs: 0, validForMs: 0))
        }
        batches[coupon.batch]!.issued += 1
        batches[coupon.batch]!.claimsByUser[coupon.owner, default: 0] += 1
        batches[coupon.batch]!.claimsByIP[coupon.clientIP, default: 0] += 1
        coupons[coupon.code] = coupon
    }

    /// Takes every coupon of `batch` and its per-user and per-IP counts out of this book (its
    /// rules and issued count stay), once its coupons can no longer be spent (`expires_at` past)
    /// and none is held by an order; nil, changing nothing, while one is held. The number of
    /// coupons taken out. O(coupons of this book).
    public mutating func retire(batch: String) -> Int? {
        guard batches[batch] != nil else { return 0 }
        let codes = coupons.values.filter { $0.batch == batch }
        if codes.contains(where: { if case .held = $0.state { return true } else { return false } }) { return nil }
        for coupon in codes { coupons.removeValue(forKey: coupon.code) }
        coupons.shrinkIfSparse()
        batches[batch]!.claimsByUser = [:]
        batches[batch]!.claimsByIP = [:]
        batches[batch]!.retired = true
        return codes.count
    }

    /// Marks `batch` retired with `issued` coupons (recovery: its coupons are not loaded).
    public mutating func restoreRetired(batch: String, issued: Int64) {
        guard batches[batch] != nil else { return }
        batches[batch]!.retired = true
        batches[batch]!.issued = issued
    }

    /// Batches holding more coupons than their `total` (a configuration lowered after claims): id, issued, total.
    public var batchesOverTotal: [(String, Int64, Int64)] {
        batches.values.filter { $0.issued > $0.rules.total }.map { ($0.rules.id, $0.issued, $0.rules.total) }
    }

    /// Traps unless every batch's counts equal its coupons and no bound coupon names two orders.
    ///
    /// O(coupons): for tests, recovery and checkpoints.
    public func verifyInvariants() {
        var issued: [String: Int64] = [:]
        var byUser: [String: [String: Int]] = [:]
        var byIP: [String: [String: Int]] = [:]
        for coupon in coupons.values {
            issued[coupon.batch, default: 0] += 1
            byUser[coupon.batch, default: [:]][coupon.owner, default: 0] += 1
            byIP[coupon.batch, default: [:]][coupon.clientIP, default: 0] += 1
        }
        for (id, ledger) in batches where !ledger.retired {
            precondition(ledger.issued == issued[id, default: 0], "batch \(id): issued \(ledger.issued) != coupons \(issued[id, default: 0])")
            precondition(ledger.claimsByUser == byUser[id, default: [:]], "batch \(id): per-user counts differ from coupons")
            precondition(ledger.claimsByIP == byIP[id, default: [:]], "batch \(id): per-IP counts differ from coupons")
        }
    }
}
