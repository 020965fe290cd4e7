import InventoryActor
import Testing

/// Table tests of the order rules in the pure core: each step's result and the counters after.
@Suite struct OrderBookTests {
    static let key = LedgerKey(event: "e1", sku: "A1")
    static let windowMs: Int64 = 1_000

    static func book(total: Int64 = 2, limit: Int32 = 1) -> OrderBook {
        var book = OrderBook()
        book.addLedger(key, total: total, limitPerUser: limit)
        return book
    }

    static func request(_ user: String, qty: Int32 = 1, nowMs: Int64 = 0) -> ReserveRequest {
        ReserveRequest(key: key, user: user, qty: qty, amountFen: 990 * Int64(qty), discountFen: 0, nowMs: nowMs, expiresAtMs: nowMs + windowMs)
    }

    static func reserved(_ result: ReserveResult) -> Order {
        guard case .reserved(let order) = result else { fatalError("expected reserved, got \(result)") }
        return order
    }

    func counters(_ book: OrderBook) -> (Int64, Int64, Int64) {
        let counters = book.counters(Self.key)!
        return (counters.available, counters.reserved, counters.sold)
    }

    @Test func reserveThenPayMovesReservedToSold() {
        var book = Self.book()
        let order = Self.reserved(book.reserve(Self.request("u1")))
        #expect(order.status == .pending)
        #expect(counters(book) == (1, 1, 0))
        guard case .paid(let paid) = book.pay(order.id, transaction: "t1", amountFen: 990, nowMs: 10) else {
            Issue.record("not paid")
            return
        }
        #expect(paid.status == .paid && paid.transaction == "t1")
        #expect(counters(book) == (1, 0, 1))
        book.verifyInvariants()
    }

    @Test func unknownSKUAndSoldOutAndLimit() {
        var book = Self.book(total: 1, limit: 1)
        var other = Self.request("u1")
        other.key = LedgerKey(event: "e1", sku: "nope")
        #expect(book.reserve(other) == .unknownSKU)
        _ = Self.reserved(book.reserve(Self.request("u1")))
        #expect(book.reserve(Self.request("u1")) == .limitExceeded)
        #expect(book.reserve(Self.request("u2")) == .soldOut)
        #expect(counters(book) == (0, 1, 0))
    }

    @Test func paymentRulesInContractOrder() {
        var book = Self.book(total: 1)
        let order = Self.reserved(book.reserve(Self.request("u1")))
        let missing = OrderID(sequence: 999, slot: Self.key.slot)
        // Each row: the call, the expected result shape, counters after.
        #expect(book.pay(missing, transaction: "t1", amountFen: 990, nowMs: 1) == .unknownOrder)
        #expect(book.pay(order.id, transaction: "t1", amountFen: 1, nowMs: 1) == .amountMismatch(expectedFen: 990))
        #expect(counters(book) == (0, 1, 0))
        guard case .paid = book.pay(order.id, transaction: "t1", amountFen: 990, nowMs: 1) else { Issue.record("pay"); return }
        guard case .duplicate = book.pay(order.id, transaction: "t1", amountFen: 990, nowMs: 2) else { Issue.record("duplicate"); return }
        guard case .doublePayment(let double) = book.pay(order.id, transaction: "t2", amountFen: 990, nowMs: 3) else { Issue.record("double"); return }
        #expect(double.transaction == "t1", "the first transaction stays the order's")
        #expect(counters(book) == (0, 0, 1))
        book.verifyInvariants()
    }

    @Test func latePaymentRetakesStockWhenAvailable() {
        var book = Self.book(total: 1)
        let order = Self.reserved(book.reserve(Self.request("u1")))
        #expect(book.expireDue(nowMs: Self.windowMs).map(\.id) == [order.id])
        #expect(counters(book) == (1, 0, 0))
        guard case .latePaid(let paid) = book.pay(order.id, transaction: "t1", amountFen: 990, nowMs: 5_000) else { Issue.record("late"); return }
        #expect(paid.status == .paid)
        #expect(counters(book) == (0, 0, 1))
        book.verifyInvariants()
    }

    @Test func latePaymentWithoutStockIsRefundPending() {
        var book = Self.book(total: 1)
        let first = Self.reserved(book.reserve(Self.request("u1")))
        _ = book.expireDue(nowMs: Self.windowMs)
        _ = Self.reserved(book.reserve(Self.request("u2", nowMs: Self.windowMs)))
        guard case .lateRefund(let refunded) = book.pay(first.id, transaction: "t1", amountFen: 990, nowMs: 5_000) else { Issue.record("refund"); return }
        #expect(refunded.status == .refundPending)
        #expect(counters(book) == (0, 1, 0))
        guard case .duplicate = book.pay(first.id, transaction: "t1", amountFen: 990, nowMs: 5_001) else { Issue.record("dup"); return }
        book.verifyInvariants()
    }

    @Test func paymentOfPendingOrderPastDeadlineCountsAsLate() {
        var book = Self.book(total: 1)
        let order = Self.reserved(book.reserve(Self.request("u1")))
        guard case .latePaid = book.pay(order.id, transaction: "t1", amountFen: 990, nowMs: Self.windowMs) else { Issue.record("late"); return }
        #expect(counters(book) == (0, 0, 1))
    }

    @Test func cancelRules() {
        var book = Self.book(total: 2, limit: 2)
        let order = Self.reserved(book.reserve(Self.request("u1")))
        #expect(book.cancel(order.id, user: "u2", nowMs: 1) == .unknownOrder, "another user's order is unknown to them")
        guard case .canceled(let canceled) = book.cancel(order.id, user: "u1", nowMs: 1) else { Issue.record("cancel"); return }
        #expect(canceled.status == .canceled)
        #expect(counters(book) == (2, 0, 0))
        guard case .closed = book.cancel(order.id, user: "u1", nowMs: 2) else { Issue.record("closed"); return }
        let late = Self.reserved(book.reserve(Self.request("u1", nowMs: 10)))
        guard case .expiredNow(let expired) = book.cancel(late.id, user: "u1", nowMs: 10 + Self.windowMs) else { Issue.record("expiredNow"); return }
        #expect(expired.status == .expired)
        #expect(counters(book) == (2, 0, 0))
        book.verifyInvariants()
    }

    @Test func reserveIsIdempotentByOrderID() {
        var book = Self.book(total: 2, limit: 2)
        let id = OrderID(sequence: 7, slot: Self.key.slot)
        let first = Self.reserved(book.reserve(Self.request("u1"), id: id))
        let again = Self.reserved(book.reserve(Self.request("u1"), id: id))
        #expect(first == again)
        #expect(counters(book) == (1, 1, 0), "a repeat moves nothing")
        let next = Self.reserved(book.reserve(Self.request("u2")))
        #expect(next.id.sequence > 7, "fresh ids never collide with a given one")
    }

    @Test func expiryIsIdempotentAndSkipsPaidOrders() {
        var book = Self.book(total: 2, limit: 1)
        let paid = Self.reserved(book.reserve(Self.request("u1")))
        let unpaid = Self.reserved(book.reserve(Self.request("u2")))
        _ = book.pay(paid.id, transaction: "t", amountFen: 990, nowMs: 1)
        #expect(book.expireDue(nowMs: Self.windowMs - 1).isEmpty, "nothing is due before its deadline")
        #expect(book.expireDue(nowMs: Self.windowMs).map(\.id) == [unpaid.id])
        #expect(book.expireDue(nowMs: Self.windowMs * 10).isEmpty)
        #expect(counters(book) == (1, 0, 1))
    }

    @Test func orderIDRoundTripsThroughItsClientForm() {
        let id = OrderID(sequence: 123_456, slot: 1023)
        #expect(OrderID(id.description) == id)
        #expect(id.slot == 1023 && id.sequence == 123_456)
        for bad in ["", "o", "x12", "o12G", "O12", "o" + String(repeating: "f", count: 17)] {
            #expect(OrderID(bad) == nil, "\(bad)")
        }
    }

    @Test func restoreRebuildsCountersFromOrders() {
        var source = Self.book(total: 3, limit: 3)
        let a = Self.reserved(source.reserve(Self.request("u1")))
        let b = Self.reserved(source.reserve(Self.request("u2")))
        _ = Self.reserved(source.reserve(Self.request("u3")))
        _ = source.pay(a.id, transaction: "t", amountFen: 990, nowMs: 1)
        _ = source.cancel(b.id, user: "u2", nowMs: 1)
        var restored = Self.book(total: 3, limit: 3)
        for id in [a.id, b.id, OrderID(sequence: b.id.sequence + 1, slot: Self.key.slot)] {
            _ = restored.restore(source.order(id)!)
        }
        #expect(restored.counters(Self.key) == source.counters(Self.key))
        restored.verifyInvariants()
        let fresh = Self.reserved(restored.reserve(Self.request("u4")))
        #expect(source.order(fresh.id) == nil, "ids continue past the restored ones")
    }
}
