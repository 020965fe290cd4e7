import FlashSaleJournal
import InventoryActor
import NIOCore
import Synchronization

/// Run to completion on the event loop: a request read on one of the engine's loops is
/// decided there, synchronously, when its shard lives on that loop, and with one hop there and
/// one back when it lives on the other; its answer then waits on the loop's `DurableAnswers`.
/// No task, no continuation, no actor hop through the cooperative pool.
extension SaleEngine {
    /// Whether shards run on `loop`: a request read there can be decided there.
    public func runs(on loop: any EventLoop) -> Bool { loopIndex(loop) != nil }

    /// The index in `loops` of `loop`, if the engine's shards run on it.
    func loopIndex(_ loop: any EventLoop) -> Int? {
        loops.firstIndex { $0 === loop }
    }

    /// The index in `loops` of `loop`, which must be one of them: a request's loop form is
    /// called only for a loop the engine runs on (`runs(on:)`).
    func ownLoop(_ loop: any EventLoop) -> Int {
        guard let index = loopIndex(loop) else { preconditionFailure("\(loop) is not one of the engine's loops") }
        loop.preconditionInEventLoop()
        return index
    }

    /// One step of a request on the shard that owns what it touches: `work` runs isolated to
    /// `shard` on the shard's loop, then `then` gets its result on loop `here`. At once, with no
    /// hop, when the shard lives on `here`; otherwise one hop there and one back, each riding
    /// with whatever else crosses between the two loops meanwhile.
    func onShard<R: Sendable>(
        _ shard: InventoryShard, from here: Int, _ work: @escaping @Sendable (isolated InventoryShard) -> R,
        then: @escaping (R) -> Void
    ) {
        let owner = shard.index % loops.count
        if owner == here {
            then(shard.assumeIsolated(work))
            return
        }
        let back = NIOLoopBound(then, eventLoop: loops[here])
        let jobs = hops.jobs
        jobs[here][owner].post {
            let result = shard.assumeIsolated(work)
            jobs[owner][here].post { back.value(result) }
        }
    }

    /// Calls `then` on loop `here` once `ticket` is durable (nil), or with the rejection to
    /// answer if it never will be; at once without a journal or for ticket 0 (nothing written).
    func whenDurable(_ ticket: UInt64, on here: Int, _ then: @escaping (Rejection?) -> Void) {
        guard ticket != 0, !durableAnswers.isEmpty else {
            then(nil)
            return
        }
        durableAnswers[here].whenDurable(ticket, then)
    }

    /// Runs a request's loop form from outside the loops (ops, the timed sweeps, tests): on
    /// the loops in turn, answered through one continuation.
    func onALoop<T: Sendable>(_ body: @escaping @Sendable (_ loop: any EventLoop, _ answer: @escaping (T) -> Void) -> Void) async -> T {
        let loop = loops[nextLoop.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
        return await withCheckedContinuation { continuation in
            loop.execute { body(loop) { continuation.resume(returning: $0) } }
        }
    }

    /// Admits a request that runs on an event loop (the gate of `admitted`, without a task):
    /// true means it must call `leaveGate()` once answered.
    public func enterGate() -> Bool {
        guard gate.enter() else { return false }
        // A failed commit: refused from that instant, before the rebuild closes the gate.
        if let journal, !journal.isHealthy {
            gate.leave()
            return false
        }
        return true
    }

    /// The request admitted by `enterGate()` is answered.
    public func leaveGate() { gate.leave() }

    /// Decides a seckill order on `loop` (the connection's, which the caller is on), and calls
    /// `answer` on `loop` exactly once, when the order is durable or refused.
    ///
    /// Returns false, doing nothing, when `loop` is not one of the engine's loops (the caller
    /// takes the async path). The caller holds the gate (`enterGate`) until `answer` runs.
    /// `onReserved` may return a record for the new order (the idempotent answer), journaled
    /// with it as one unit in the same synchronous step that takes the stock. An order with a
    /// coupon spans two owners (SaleEngine+Coupons.swift).
    public func placeOrder(
        _ request: PlaceOrderRequest, on loop: any EventLoop, onReserved: (@Sendable (Order) -> JournalRecord?)? = nil,
        answer: @escaping (Result<Order, Rejection>) -> Void
    ) -> Bool {
        guard let here = loopIndex(loop) else { return false }
        let checked: CheckedOrder
        switch checkOrder(request) {
        case .success(let found): checked = found
        case .failure(let rejection):
            answer(.failure(rejection))
            return true
        }
        if let coupon = request.coupon {
            placeOrder(checked, coupon: coupon, here: here, onReserved: onReserved, answer: answer)
            return true
        }
        let shard = inventory.shard(for: checked.reserve.key)
        let ownerIndex = shard.index % loops.count
        let attach = Self.attachment(onReserved)
        if ownerIndex == here {
            let recorded = shard.assumeIsolated { $0.reserve(checked.reserve, attach: attach) }
            settle(recorded, checked, loop: here, answer: answer)
        } else {
            // One hop to the owner's loop to decide, one back to answer, each riding with
            // whatever else crosses between the two loops meanwhile.
            hops.claims[here][ownerIndex].post(
                RemoteClaim(shard: shard, checked: checked, attach: attach, origin: here, answer: NIOLoopBound(answer, eventLoop: loop)))
        }
        return true
    }

    /// A claim read on one loop for a shard on another.
    struct RemoteClaim: Sendable {
        let shard: InventoryShard
        let checked: CheckedOrder
        let attach: (@Sendable (Order) -> (any Sendable)?)?
        let origin: Int
        let answer: NIOLoopBound<(Result<Order, Rejection>) -> Void>
    }

    /// The owner's decision on a `RemoteClaim`, on its way back.
    struct RemoteDecision: Sendable {
        let recorded: Recorded<ReserveResult>
        let checked: CheckedOrder
        let answer: NIOLoopBound<(Result<Order, Rejection>) -> Void>
    }

    /// The mailboxes between the engine's loops: claims `[origin][owner]`, decisions
    /// `[owner][origin]` (the seckill order's, allocation-free), and jobs `[from][to]` for every
    /// other request's steps (`onShard`).
    final class Hops: Sendable {
        let claims: [[LoopMailbox<RemoteClaim>]]
        let decisions: [[LoopMailbox<RemoteDecision>]]
        let jobs: [[LoopMailbox<@Sendable () -> Void>]]

        init(loops: [any EventLoop], decide: @escaping @Sendable (_ owner: Int, [RemoteClaim]) -> Void,
             settle: @escaping @Sendable (_ origin: Int, [RemoteDecision]) -> Void) {
            claims = loops.indices.map { _ in
                loops.indices.map { owner in LoopMailbox(target: loops[owner]) { batch in decide(owner, batch) } }
            }
            decisions = loops.indices.map { _ in
                loops.indices.map { origin in LoopMailbox(target: loops[origin]) { batch in settle(origin, batch) } }
            }
            jobs = loops.indices.map { _ in
                loops.indices.map { to in LoopMailbox(target: loops[to]) { batch in for job in batch { job() } } }
            }
        }
    }

    /// On an owner's loop: decides a batch of claims from other loops, sends the decisions back.
    static func decide(_ batch: [RemoteClaim], owner: Int, hops: Hops) {
        for claim in batch {
            let recorded = claim.shard.assumeIsolated { $0.reserve(claim.checked.reserve, attach: claim.attach) }
            hops.decisions[owner][claim.origin].post(RemoteDecision(recorded: recorded, checked: claim.checked, answer: claim.answer))
        }
    }

    /// On the connection's loop: answers a decided claim once its change is durable.
    func settle(_ recorded: Recorded<ReserveResult>, _ checked: CheckedOrder, loop: Int, answer: @escaping (Result<Order, Rejection>) -> Void) {
        guard case .reserved(let order) = recorded.result else {
            answer(.failure(refusal(recorded.result, event: checked.event)))
            return
        }
        guard !durableAnswers.isEmpty else {
            stats.ordersCreated.increment()
            answer(.success(order))
            return
        }
        durableAnswers[loop].whenDurable(recorded.ticket) { [stats] failure in
            if let failure {
                answer(.failure(failure))
            } else {
                stats.ordersCreated.increment()
                answer(.success(order))
            }
        }
    }
}
