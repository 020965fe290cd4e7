import Foundation
import Synchronization
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleOps
@testable import FlashSaleJournal
@testable import InventoryActor

/// The fault rules (docs/RELIABILITY.md §2): ops writes under a failing disk, `PAUSE` as a
/// barrier, payments whose answers wait for durability, double charges recorded once, nonces
/// used only when accepted and remembered for the whole window across restarts, per-IP limits
/// over IPv6, and `STATS rejected_rate_limited`. Each test failed on the code before it.
@Suite struct FaultRuleTests {
    static let nowMs: Int64 = 1_795_000_000_000
    static let key = LedgerKey(event: "e1", sku: "A1")

    // MARK: Ops writes

    /// `RESTOCK` answered `ERR unavailable` changed nothing: retried three times during a disk
    /// fault, then once after it, `total` moved by exactly the delta answered OK. (Before, each
    /// refused restock was applied in memory and its record committed once the disk healed:
    /// +40, not +10.)
    @Test func restockRefusedDuringADiskFaultChangesNothing() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 100, limitPerUser: 1)
        let disk = try await DiskFaultTests.FailingWorld(config: config, clock: ManualClock(startMs: Self.nowMs), fault: DiskFaultTests.faults[0])
        // As the ops port runs it: through the engine's gate.
        func restock() async -> Result<StockCounters, Rejection> {
            await disk.engine.admitted { await disk.engine.restock(event: "e1", sku: "A1", delta: 10) } ?? .failure(SaleEngine.notReady)
        }
        disk.fail()
        for _ in 0..<3 {
            guard case .failure(let rejection) = await restock() else { Issue.record("a restock was applied during the fault"); continue }
            #expect(rejection.code == "unavailable")
        }
        try await disk.heal()
        #expect(try #require(await disk.engine.inventory.counters(Self.key)).total == 100)
        guard case .success = await restock() else { Issue.record("the restock after the fault failed"); return }
        #expect(try #require(await disk.engine.inventory.counters(Self.key)).total == 110)
        await disk.stop()
        let restarted = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        #expect(try #require(await restarted.engine.inventory.counters(Self.key)).total == 110)
        await restarted.stop()
    }

    // MARK: Payments

    /// A duplicate notification is not answered before the payment it reports is durable: the
    /// original's commit is held, the duplicate (same transaction, new nonce) must wait for it.
    /// (Before, the duplicate was answered 200 at once while the original could still be lost.)
    @Test func aDuplicateWaitsForTheOriginalPaymentToBeDurable() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 10, limitPerUser: 1)
        let hold = Hold()
        let journal = try Journal(
            directory: directory.path, synchronous: .normal, batchMax: 64, logger: TestEngine.logger,
            faultInjector: {
                hold.blockIfEngaged()  // runs on the writer thread before COMMIT: holds the commit
                return nil
            })
        let engine = SaleEngine(config: config, clock: ManualClock(startMs: Self.nowMs), journal: journal, logger: TestEngine.logger)
        await engine.recover(from: try Journal.recover(directory: directory.path))
        let world = TestEngine(
            config: config, clock: ManualClock(startMs: Self.nowMs), engine: engine,
            api: BuyerAPI(engine: engine, userTokenSecret: TestSecrets.userToken, guards: BuyerGuards(config: config)))
        let id = try #require(await world.order("u1").json["order"]?.stringValue)

        hold.engage()
        let original = Task { await world.pay(order: id, transaction: "tx1", amount: 990, nonce: "first") }
        try await pollUntil { hold.isHolding }
        let heldTicket = journal.lastTicket
        let duplicateDone = FaultFlag()
        let answeredWhileHeld = FaultFlag()
        let duplicate = Task {
            let answer = await world.pay(order: id, transaction: "tx1", amount: 990, nonce: "second")
            answeredWhileHeld.set(hold.isHolding)
            duplicateDone.set(true)
            return answer
        }
        // Either the duplicate has answered, or it has reached the journal and waits.
        try await pollUntil { duplicateDone.isOn || journal.lastTicket > heldTicket }
        hold.release()
        let first = await original.value
        let second = await duplicate.value
        #expect(first.status == 200 && first.json["status"]?.stringValue == "paid")
        if answeredWhileHeld.isOn {
            // Only a refusal may come while the original is not durable: on a loaded box the
            // held commit can pass `Journal.commitStallLimit`, and the duplicate is then 503.
            #expect(second.status == 503, "the duplicate was answered \(second.status) while the original payment was not durable")
        } else {
            #expect(second.status == 200 && second.json["duplicate"]?.boolValue == true)
        }
        let again = await world.pay(order: id, transaction: "tx1", amount: 990, nonce: "third")
        #expect(again.status == 200 && again.json["duplicate"]?.boolValue == true)
        await world.stop()
    }

    /// A double charge redelivered five times with new nonces: five identical answers, one
    /// refund row, `double_payments` = 1, also after a restart. (Before: five rows, five counted.)
    @Test func aDoubleChargeIsRecordedOncePerTransaction() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 10, limitPerUser: 1)
        let clock = ManualClock(startMs: Self.nowMs)
        let world = try await TestEngine.start(config: config, clock: clock)
        let id = try #require(await world.order("u1").json["order"]?.stringValue)
        #expect(await world.pay(order: id, transaction: "tx1", amount: 990).status == 200)
        var bodies: [[UInt8]] = []
        for _ in 0..<5 {
            let answer = await world.pay(order: id, transaction: "tx2", amount: 990)
            #expect(answer.status == 200 && answer.json["refund"]?.stringValue == "tx2")
            bodies.append(answer.body)
        }
        #expect(Set(bodies).count == 1, "the redeliveries were answered differently")
        #expect(world.engine.stats.doublePayments.load(ordering: .relaxed) == 1)
        await world.stop()
        let state = try Journal.recover(directory: directory.path)
        #expect(state.refunds.count == 1)
        #expect(state.doublePayments == 1)
        let restarted = try await TestEngine.start(config: config, clock: clock)
        #expect(restarted.engine.stats.doublePayments.load(ordering: .relaxed) == 1)
        let again = await restarted.pay(order: id, transaction: "tx2", amount: 990)
        #expect(again.status == 200 && again.body == bodies[0])
        #expect(restarted.engine.stats.doublePayments.load(ordering: .relaxed) == 1)
        await restarted.stop()
        #expect(try Journal.recover(directory: directory.path).refunds.count == 1)
    }

    /// A notification answered 503 has not used its nonce: sent again unchanged once the disk
    /// is back, it is accepted. (Before, the nonce was taken first: the resend was `409 replay`.)
    @Test func aNotificationAnswered503CanBeSentAgainUnchanged() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 10, limitPerUser: 1)
        let disk = try await DiskFaultTests.FailingWorld(config: config, clock: ManualClock(startMs: Self.nowMs), fault: DiskFaultTests.faults[0])
        let id = try #require(await disk.world.order("u1").json["order"]?.stringValue)
        disk.fail()
        let refused = await disk.world.pay(order: id, transaction: "tx1", amount: 990, nonce: "resent", timestamp: Self.nowMs / 1000)
        #expect(refused.status == 503)
        try await disk.heal()
        let resent = await disk.world.pay(order: id, transaction: "tx1", amount: 990, nonce: "resent", timestamp: Self.nowMs / 1000)
        #expect(resent.status == 200 && resent.json["status"]?.stringValue == "paid", "\(resent.status) \(resent.errorCode ?? "")")
        await disk.stop()
    }

    /// A nonce is remembered until its timestamp + 300 s: a notification stamped 290 s ahead is
    /// refused as a replay for as long as it could be accepted, and across a restart. (Before,
    /// a nonce was remembered 300 s from its arrival and not at all across a restart.)
    @Test func aNonceIsRememberedForItsWholeWindowAndAcrossARestart() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 10, limitPerUser: 1)
        let clock = ManualClock(startMs: Self.nowMs)
        let world = try await TestEngine.start(config: config, clock: clock)
        let id = try #require(await world.order("u1").json["order"]?.stringValue)
        let future = Self.nowMs / 1000 + 290
        #expect(await world.pay(order: id, transaction: "tx1", amount: 990, nonce: "ahead", timestamp: future).status == 200)
        clock.advance(ms: 400_000)  // still inside the window of the stamp (future + 300 s)
        #expect(await world.pay(order: id, transaction: "tx1", amount: 990, nonce: "ahead", timestamp: future).errorCode == "replay")
        await world.stop()

        let restarted = try await TestEngine.start(config: config, clock: clock)
        #expect(await restarted.pay(order: id, transaction: "tx1", amount: 990, nonce: "ahead", timestamp: future).errorCode == "replay")
        clock.advance(ms: 200_000)  // now past future + 300 s: the stamp itself is stale
        #expect(await restarted.pay(order: id, transaction: "tx1", amount: 990, nonce: "ahead", timestamp: future).errorCode == "stale")
        await restarted.stop()
    }

    // MARK: Per-IP limits

    /// A coupon batch's `per_ip` counts an IPv6 client by its /64, as the rate limiter does.
    /// (Before, each address of a /64 counted apart: one subscriber could claim without limit.)
    @Test func couponPerIPCountsAnIPv6ClientByItsSlash64() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let batch = DiskFaultTests.couponBatch(total: 100, perUser: 1, perIP: 1)
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 10, limitPerUser: 1, coupons: [batch])
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        #expect(await world.claim("v1", clientIP: "2001:db8:1:2::1").status == 201)
        #expect(await world.claim("v2", clientIP: "2001:db8:1:2:ffff::9").errorCode == "ip_limit_exceeded")
        #expect(await world.claim("v3", clientIP: "2001:db8:1:3::1").status == 201, "another /64 is another client")
        await world.stop()
    }

    /// `STATS rejected_rate_limited` counts every `429`. (Before, it stayed 0.)
    @Test func statsCountEveryRateLimitedAnswer() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        var config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 1_000, limitPerUser: 1)
        config.rateLimitPerIPRate = 1
        config.rateLimitPerIPBurst = 5
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        var limited = 0
        for n in 0..<40 where await world.order("r\(n)").status == 429 { limited += 1 }
        #expect(limited == 35)
        let stats = Dictionary(uniqueKeysWithValues: world.engine.stats.snapshot)
        #expect(stats["rejected_rate_limited"] == 35, "\(stats)")
        await world.stop()
    }
}

/// The tests that hold a shard inside a decision: each blocks the event loop the shard runs on
/// (one of two on this machine), so they run one at a time.
@Suite(.serialized) struct HeldShardTests {
    static let nowMs = FaultRuleTests.nowMs

    /// A world with one shard, held inside the decision of an order by `held` (its observer
    /// blocks): the shard decides nothing else until `log.hold.release()`.
    static func holdingTheShard(_ directory: TemporaryDirectory, clock: ManualClock) async throws
        -> (world: TestEngine, log: DecisionLog, first: Task<APIResponse, Never>)
    {
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: nowMs, stock: 1_000, limitPerUser: 1, shards: 1)
        let world = try await TestEngine.start(config: config, clock: clock)
        let log = DecisionLog()
        await world.engine.inventory.setObserver(log)
        log.hold.engage()
        let first = Task { await world.order("held") }
        try await pollUntil { log.hold.isHolding }
        return (world, log, first)
    }

    /// The barrier, made deterministic: the only shard is held busy inside a decision (its
    /// observer blocks), claims that passed every check before the pause queue behind it, then
    /// `PAUSE` is sent. Whatever the shard decides, the log of its decisions must not show an
    /// order after the moment `PAUSE` answered OK. (Before, `PAUSE` set a flag the engine read
    /// before the hop to the shard: it answered OK while the queued claims were still to be
    /// decided, and they became orders after it.)
    @Test func pauseAnswersOnlyAfterClaimsAlreadyPastItsCheckAreDecided() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (world, log, first) = try await Self.holdingTheShard(directory, clock: ManualClock(startMs: Self.nowMs))
        let queued = (0..<5).map { n in Task { await world.order("queued\(n)") } }
        for _ in 0..<100 { await Task.yield() }  // let them pass the engine's checks and queue at the shard
        let ticketBefore = world.engine.journal?.lastTicket ?? 0
        let pause = Task {
            let result = await world.engine.setPaused("e1", true)
            log.mark("PAUSE OK")
            return result
        }
        // Either PAUSE has answered (the shard is still held), or it waits on the shard.
        try await pollUntil { log.contains("PAUSE OK") || (world.engine.journal?.lastTicket ?? 0) > ticketBefore }
        log.hold.release()
        if case .failure(let rejection) = await pause.value { Issue.record("PAUSE refused: \(rejection.message)") }
        _ = await first.value
        for claim in queued { _ = await claim.value }
        let entries = log.entries
        let pausedAt = try #require(entries.firstIndex(of: "PAUSE OK"))
        #expect(!entries[pausedAt...].contains { $0.hasPrefix("order") }, "orders decided after PAUSE answered OK: \(entries)")
        #expect(await world.order("after").errorCode == "paused")
        await world.stop()
    }

    /// The sale window is checked by the shard, with its clock, in the same step as the stock:
    /// a claim that passed the engine's checks before `ends_at` but reaches the shard after it
    /// is refused `410 ended`. (Before, the window was checked before the hop: it became an
    /// order of an ended sale.)
    @Test func aClaimReachingTheShardAfterTheEndIsRefused() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = ManualClock(startMs: Self.nowMs)
        let (world, log, first) = try await Self.holdingTheShard(directory, clock: clock)
        // Read on the loop the (only) shard does not run on (loop 0 runs shard 0): once
        // `respond` has returned there, the claim has passed every check of the engine and
        // waits for the held shard.
        let (answers, answered) = AsyncStream.makeStream(of: APIResponse.self)
        let request = world.orderRequest("late")
        let loop = world.engine.loops[1]
        try await loop.submit {
            let taken = world.api.respond(to: request, on: loop) { answered.yield($0) }
            precondition(taken, "the order path takes a plain order")
        }.get()
        clock.advance(ms: 3_600_000)  // the event's end (makeTestConfig: now + 1 h)
        log.hold.release()
        #expect(await first.value.status == 201)
        let answer = try #require(await answers.first { _ in true })
        #expect(answer.status == 410 && answer.errorCode == "ended", "\(answer.status) \(answer.bodyText)")
        await world.stop()
    }

}

/// A shard observer that logs each decision and can hold the shard inside its next one.
final class DecisionLog: StockObserver {
    private let log = Mutex<[String]>([])
    /// Holds the shard inside the next decision once engaged.
    let hold = Hold()

    var entries: [String] { log.withLock { $0 } }
    func contains(_ entry: String) -> Bool { log.withLock { $0.contains(entry) } }
    func mark(_ entry: String) { log.withLock { $0.append(entry) } }

    func stockChanged(_ key: LedgerKey, _ counters: StockCounters, by change: InventoryChange) {
        if case .order(let order) = change { mark("order \(order.user) \(order.status)") }
        hold.blockIfEngaged()
    }
}
