import Foundation
import Logging
import Synchronization
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal
@testable import InventoryActor

/// What a concurrent burst was answered.
final class BurstOutcomes: Sendable {
    let answered = Atomic<Int>(0)
    let outcomes = Mutex<(created: [String: String], refused: [String])>(([:], []))
}

/// Disk faults at the engine level (§3: a 503 changes nothing, now or later): while
/// journal commits fail, every claim is `503 unavailable` with one error log line; a failed
/// commit drops what it held and everything queued behind it, the engine rebuilds its state
/// from the database once a probe write succeeds (`/readyz` 503 meanwhile), and then every
/// acknowledged change is there and no change answered 503 is, also after a restart.
@Suite struct DiskFaultTests {
    static let nowMs: Int64 = 1_795_000_000_000

    /// What a full disk, a failing device and a file system remounted read-only give SQLite.
    /// (A live read-only remount cannot be staged in a test: the kernel refuses to remount a
    /// file system read-only while the journal holds files open for writing, `EBUSY`; it
    /// happens only when the kernel itself remounts on errors, and then SQLite sees these codes.)
    static let faults: [SQLiteError] = [
        SQLiteError(code: 13, message: "database or disk is full"),
        SQLiteError(code: 10, extendedCode: 778, message: "disk I/O error"),
        SQLiteError(code: 8, extendedCode: 776, message: "attempt to write a readonly database"),
    ]

    /// An engine whose journal consults `failing` before every commit, with the daemon's
    /// fail-stop loop running (`EngineService`: on a failed commit, rebuild from the database).
    final class FailingWorld: Sendable {
        let world: TestEngine
        let journal: Journal
        /// Whether commits fail now.
        let flag: FaultFlag
        let log: CapturedLog
        let rebuilder: Task<Void, Never>

        init(config: SaleConfig, clock: ManualClock, fault: SQLiteError, log: CapturedLog = CapturedLog()) async throws {
            let failing = FaultFlag()
            let journal = try Journal(
                directory: config.dataDirectory, synchronous: .normal, batchMax: config.journal.batchMax, logger: log.logger,
                feed: ChangeFeedJSON(clock: clock), faultInjector: { failing.isOn ? fault : nil })
            let engine = SaleEngine(config: config, clock: clock, journal: journal, logger: log.logger)
            await engine.recover(from: try Journal.recover(directory: config.dataDirectory))
            self.world = TestEngine(
                config: config, clock: clock, engine: engine,
                api: BuyerAPI(engine: engine, userTokenSecret: TestSecrets.userToken, guards: BuyerGuards(config: config)))
            self.journal = journal
            self.flag = failing
            self.log = log
            self.rebuilder = Task {
                while !Task.isCancelled, await journal.failed() { await engine.rebuildAfterFailedCommit() }
            }
        }

        var engine: SaleEngine { world.engine }

        /// Makes every later commit fail (`heal()` ends it).
        func fail() { flag.set(true) }

        /// Clears the fault and waits (bounded) until the engine serves again.
        func heal() async throws {
            flag.set(false)
            try await pollUntil { engine.isReady && journal.isHealthy }
        }

        func stop() async {
            rebuilder.cancel()
            await rebuilder.value
            await world.stop()
        }
    }

    @Test(arguments: faults)
    func failingDiskAnswersUnavailableThenRebuildsAndKeepsExactlyWhatWasAcknowledged(fault: SQLiteError) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let batch = CouponBatchConfig(
            id: "c1", total: 100, valueFen: 100, minSpendFen: 0, perUser: 100, perIP: 100,
            startsAtMs: Self.nowMs - 60_000, endsAtMs: Self.nowMs + 3_600_000, validForMs: 3_600_000)
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 10, limitPerUser: 1, coupons: [batch])
        let clock = ManualClock(startMs: Self.nowMs)
        let disk = try await FailingWorld(config: config, clock: clock, fault: fault)
        let world = disk.world
        let engine = disk.engine

        // Healthy: acknowledged orders, one paid, one left pending, one coupon.
        let paid = await world.order("u1")
        #expect(paid.status == 201)
        let paidID = try #require(paid.json["order"]?.stringValue)
        #expect(await world.pay(order: paidID, transaction: "t-paid", amount: 990).status == 200)
        let pending = await world.order("u2")
        #expect(pending.status == 201)
        let pendingID = try #require(pending.json["order"]?.stringValue)
        let toCancel = await world.order("u3")
        let toCancelID = try #require(toCancel.json["order"]?.stringValue)
        #expect(await world.claim("u4").status == 201)
        let key = LedgerKey(event: "e1", sku: "A1")
        let before = try #require(await engine.inventory.counters(key))

        // The disk fails: the first claim to reach it is 503, and so is everything after it.
        disk.fail()
        let refusedUsers = ["f1", "f2", "f3"]
        for user in refusedUsers {
            let refused = await world.order(user)
            #expect(refused.status == 503)
            #expect(refused.errorCode == "unavailable")
            #expect(refused.json["order"] == nil, "a 503 names no order")
        }
        #expect(!disk.journal.isHealthy)
        let payDuringFault = await world.pay(order: pendingID, transaction: "t-fault", amount: 990)
        #expect(payDuringFault.status == 503)
        #expect(payDuringFault.errorCode == "unavailable")
        let cancelDuringFault = await world.api.respond(to: APIRequest(
            method: "POST", path: "/v1/orders/\(toCancelID)/cancel", authorization: world.bearer("u3")))
        #expect(cancelDuringFault.status == 503)
        #expect(cancelDuringFault.errorCode == "unavailable")
        let claimDuringFault = await world.claim("u5")
        #expect(claimDuringFault.status == 503)
        // Not ready while the state is rebuilt; health checks go on.
        #expect(world.api.respondImmediately(to: APIRequest(method: "GET", path: "/readyz"))?.status == 503)
        #expect(world.api.respondImmediately(to: APIRequest(method: "GET", path: "/healthz"))?.status == 200)
        #expect(disk.log.count(level: .error) <= 2, "a few log lines for the outage, not one per request: \(disk.log.messages)")

        // The disk heals: the engine holds exactly what the database holds, and serves again.
        try await disk.heal()
        #expect(disk.log.messages.contains { $0.contains("serving again") })
        #expect(try #require(await engine.inventory.counters(key)) == before, "a change answered 503 is in memory")
        #expect(await engine.order(pendingID)?.status == .pending, "the payment answered 503 happened")
        #expect(await engine.order(toCancelID)?.status == .pending, "the cancel answered 503 happened")
        // A buyer told 503 may buy: nothing of the failed attempt holds their limit.
        for user in refusedUsers { #expect(await world.order(user).status == 201, "\(user)'s retry after a 503") }
        #expect(await world.pay(order: pendingID, transaction: "t-after", amount: 990).status == 200)
        #expect(await world.claim("u5").status == 201)
        await engine.inventory.verifyInvariants()
        await disk.stop()

        // Restart on the same directory: every acknowledged answer is there, nothing else.
        let restarted = try await TestEngine.start(config: config, clock: clock)
        func status(_ id: String) async -> String? { await restarted.engine.order(id)?.status.description }
        #expect(await status(paidID) == "paid")
        #expect(await status(pendingID) == "paid")
        #expect(await status(toCancelID) == "pending")
        let counters = try #require(await restarted.engine.inventory.counters(key))
        #expect(counters.sold == before.sold + 1, "only acknowledged payments are sold")
        // u2's pending order was paid; the three retries hold one unit each.
        let expectedReserved = before.reserved - 1 + Int64(refusedUsers.count)
        #expect(counters.reserved == expectedReserved, "the retries and nothing of the 503s")
        await restarted.engine.inventory.verifyInvariants()
        await restarted.engine.inventory.verifyCouponInvariants()
        await restarted.stop()
    }

    /// A burst of concurrent orders with the disk failing in the middle: every order answered
    /// 201 is there after the fault clears and after a restart, no order answered 503 is
    /// (its buyer holds nothing), and the counters are exactly the 201s that stand. Failed
    /// before fail-stop: the records queued behind the failed commit were retried and
    /// committed once the disk healed, so orders answered 503 became real.
    @Test func diskFailingMidBurstLeavesExactlyTheAcknowledgedOrders() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 10_000, limitPerUser: 1)
        let clock = ManualClock(startMs: Self.nowMs)
        let disk = try await FailingWorld(config: config, clock: clock, fault: Self.faults[0])
        let world = disk.world
        let burst = BurstOutcomes()
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for n in 0..<50 {
                        let user = "b\(worker)-\(n)"
                        let response = await world.order(user)
                        // The disk fails once a quarter of the burst is answered.
                        if burst.answered.add(1, ordering: .relaxed).newValue == 100 { disk.fail() }
                        if response.status == 201, let id = response.json["order"]?.stringValue {
                            burst.outcomes.withLock { $0.created[user] = id }
                        } else {
                            #expect(response.status == 503, "\(user): \(response.status) \(response.errorCode ?? "")")
                            burst.outcomes.withLock { $0.refused.append(user) }
                        }
                    }
                }
            }
        }
        let (created, refused) = burst.outcomes.withLock { ($0.created, $0.refused) }
        #expect(created.count >= 100)
        #expect(!refused.isEmpty, "the fault hit no request")
        try await disk.heal()
        let key = LedgerKey(event: "e1", sku: "A1")
        #expect(try #require(await disk.engine.inventory.counters(key)).reserved == Int64(created.count))
        for (user, id) in created { #expect(await disk.engine.order(id)?.user == user, "acknowledged order \(id) lost") }
        await disk.stop()

        let recovered = try Journal.recover(directory: directory.path)
        #expect(Set(recovered.orders.map(\.user)) == Set(created.keys), "the disk holds exactly the orders answered 201")
        let restarted = try await TestEngine.start(config: config, clock: clock)
        #expect(try #require(await restarted.engine.inventory.counters(key)).reserved == Int64(created.count))
        for user in refused.prefix(20) { #expect(await restarted.order(user).status == 201, "\(user) was told 503 but holds stock") }
        await restarted.engine.inventory.verifyInvariants()
        await restarted.stop()
    }

    /// Coupon batch `c1`, live around `nowMs`: `total` coupons of 1.00 yuan off, no minimum.
    static func couponBatch(total: Int64 = 10, perUser: Int = 1, perIP: Int = 10) -> CouponBatchConfig {
        CouponBatchConfig(
            id: "c1", total: total, valueFen: 100, minSpendFen: 0, perUser: perUser, perIP: perIP,
            startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 3_600_000, validForMs: 3_600_000)
    }

    /// A cancel whose commit is the first to fail is answered 503 and changes nothing: after
    /// the rebuild the order is pending again and still holds its coupon, and a cancel then
    /// gives the coupon back to its owner, who can spend it.
    @Test func aCancelCaughtByTheFirstFailingCommitChangesNothing() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 10, limitPerUser: 5, coupons: [Self.couponBatch()])
        let clock = ManualClock(startMs: Self.nowMs)
        let disk = try await FailingWorld(config: config, clock: clock, fault: Self.faults[0])
        let world = disk.world
        let code = try #require(await world.claim("u1").json["coupon"]?.stringValue)
        let order = try #require(await world.order("u1", coupon: code).json["order"]?.stringValue)

        disk.fail()  // the journal still looks healthy: the cancel reaches the shard
        let cancel = await world.api.respond(to: APIRequest(method: "POST", path: "/v1/orders/\(order)/cancel", authorization: world.bearer("u1")))
        #expect(cancel.status == 503)

        try await disk.heal()
        #expect(await disk.engine.order(order)?.status == .pending, "the cancel answered 503 happened")
        #expect(await world.order("u1", coupon: code).status == 409, "the coupon is still held by the pending order")
        let again = await world.api.respond(to: APIRequest(method: "POST", path: "/v1/orders/\(order)/cancel", authorization: world.bearer("u1")))
        #expect(again.status == 200)
        let reuse = await world.order("u1", coupon: code)
        #expect(reuse.status == 201, "the coupon of the canceled order is its owner's again: \(reuse.body)")
        await disk.stop()
    }

    /// A late payment whose commit fails changes nothing: the expired order stays expired and
    /// its coupon stays its owner's, usable at once. (Before, the refund was decided in memory
    /// and the coupon was left held by a refund_pending order nobody could pay.)
    @Test func aLatePaymentWhoseCommitFailsLeavesTheCouponWithItsOwner() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 10, limitPerUser: 5, coupons: [Self.couponBatch()])
        let clock = ManualClock(startMs: Self.nowMs)
        let disk = try await FailingWorld(config: config, clock: clock, fault: Self.faults[0])
        let world = disk.world
        let code = try #require(await world.claim("u1").json["coupon"]?.stringValue)
        let placed = await world.order("u1", coupon: code)
        let order = try #require(placed.json["order"]?.stringValue)
        let amount = try #require(placed.json["amount"]?.intValue)
        clock.advance(ms: config.paymentWindowMs + 1)
        #expect(await disk.engine.expireDue() == 1)
        #expect(await disk.engine.settled() == nil, "the expiry is durable before the disk fails")

        disk.fail()
        let late = await world.pay(order: order, transaction: "t-late", amount: amount)
        #expect(late.status == 503)
        try await disk.heal()
        #expect(await disk.engine.order(order)?.status == .expired, "the payment answered 503 happened")
        let again = await world.order("u1", coupon: code)
        #expect(again.status == 201, "the coupon is its owner's: \(again.body)")
        await disk.stop()
    }

    /// Runs `/bin/<tool> arguments`; true on exit 0.
    static func run(_ tool: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// Whether this process may mount a tmpfs (root, with the capability): the real-disk test needs one.
    static let canMountTmpfs: Bool = {
        guard getuid() == 0 else { return false }
        let probe = TemporaryDirectory()
        defer { probe.remove() }
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe.path]) else { return false }
        return run("/bin/umount", [probe.path])
    }()

    /// A real full disk: the data directory on a 2 MiB tmpfs, filled by another file. Claims
    /// are 503 while it is full and 201 again once the file is removed; a restart recovers
    /// every acknowledged order. Skipped unless the test runs as root and can mount.
    @Test(.enabled(if: canMountTmpfs, "needs root and mount(2)"))
    func fullTmpfsAnswersUnavailableThenResumes() async throws {
        let mountPoint = TemporaryDirectory()
        defer { mountPoint.remove() }
        try #require(Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint.path]))
        defer { _ = Self.run("/bin/umount", ["-l", mountPoint.path]) }
        let config = makeTestConfig(dataDirectory: mountPoint.path, nowMs: Self.nowMs, stock: 100_000, limitPerUser: 1)
        let clock = ManualClock(startMs: Self.nowMs)
        let world = try await TestEngine.start(config: config, clock: clock)
        let journal = try #require(world.engine.journal)
        let rebuilder = Task { [engine = world.engine] in
            while !Task.isCancelled, await journal.failed() { await engine.rebuildAfterFailedCommit() }
        }
        var acknowledged: [String] = []
        var refusedUsers: [String] = []
        for n in 0..<20 {
            let response = await world.order("before-\(n)")
            #expect(response.status == 201)
            if let id = response.json["order"]?.stringValue { acknowledged.append(id) }
        }

        // Fill the file system to the last byte.
        let filler = mountPoint.path + "/filler"
        try #require(FileManager.default.createFile(atPath: filler, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: filler))
        let chunk = Data(repeating: 0xAB, count: 4096)
        while (try? handle.write(contentsOf: chunk)) != nil {}
        for _ in 0..<64 where (try? handle.write(contentsOf: Data([0]))) != nil {}
        try? handle.close()

        // Orders until the journal needs a page it cannot get; from then on, all 503.
        var refused = 0
        for n in 0..<2_000 where refused < 5 {
            let response = await world.order("full-\(n)")
            if response.status == 201, let id = response.json["order"]?.stringValue {
                acknowledged.append(id)
            } else {
                #expect(response.status == 503)
                #expect(response.errorCode == "unavailable")
                refused += 1
                refusedUsers.append("full-\(n)")
            }
        }
        #expect(refused == 5, "the journal never hit the full disk")
        #expect(world.engine.journal?.isHealthy == false)
        #expect(world.api.respondImmediately(to: APIRequest(method: "GET", path: "/healthz"))?.status == 200)

        // Room again: a probe commits, the state is rebuilt, claims are acknowledged again.
        try FileManager.default.removeItem(atPath: filler)
        try await pollUntil { world.engine.isReady && journal.isHealthy }
        let after = await world.order("after")
        #expect(after.status == 201)
        if let id = after.json["order"]?.stringValue { acknowledged.append(id) }
        rebuilder.cancel()
        await rebuilder.value
        await world.stop()
        let recoveredUsers = Set(try Journal.recover(directory: mountPoint.path).orders.map(\.user))
        for user in refusedUsers { #expect(!recoveredUsers.contains(user), "\(user) was answered 503 but has an order") }

        let restarted = try await TestEngine.start(config: config, clock: clock)
        for id in acknowledged {
            #expect(await restarted.engine.order(id)?.status.description == "pending", "acknowledged order \(id) lost")
        }
        await restarted.engine.inventory.verifyInvariants()
        await restarted.stop()
    }
}
