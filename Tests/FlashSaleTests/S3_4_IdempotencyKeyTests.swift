import Foundation
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import InventoryActor

/// `Idempotency-Key` on order creation (§3.4): the first answer, stock taken once, across restarts.
@Suite struct IdempotencyTests {
    static let nowMs: Int64 = 1_795_000_000_000
    static let key = LedgerKey(event: "e1", sku: "A1")

    @Test func aRepeatGetsTheFirstAnswerAndTakesNoMoreStock() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 10, limitPerUser: 5)
        let world = try await TestEngine.start(config: config, clock: ManualClock(startMs: Self.nowMs))
        let first = await world.order("u1", key: "retry-1")
        #expect(first.status == 201)
        world.clock.advance(ms: 5_000)
        let again = await world.order("u1", key: "retry-1")
        #expect(again.status == 201 && again.body == first.body, "the first answer, byte for byte")
        // The key is bound to its first request; another body is refused and changes nothing.
        let changed = await world.order("u1", qty: 2, key: "retry-1")
        #expect(changed.status == 422 && changed.errorCode == "idempotency_mismatch", "\(changed.bodyText)")
        #expect(await world.engine.inventory.counters(Self.key)?.reserved == 1)
        // Another key, or another user with the same key, is a new request.
        #expect(await world.order("u1", key: "retry-2").status == 201)
        #expect(await world.order("u2", key: "retry-1").status == 201)
        #expect(await world.order("u1", key: nil).status == 201)
        #expect(await world.engine.inventory.counters(Self.key)?.reserved == 4)
        await world.stop()
    }

    /// The binding is SHA-256 over "METHOD path\nbody", in lower-case hex (what a client or
    /// an operator can recompute).
    @Test func theRequestDigestIsSHA256OfMethodPathAndBody() {
        let digest = IdempotencyStore.digest(method: "POST", path: "/v1/events/e1/orders", body: Array(#"{"sku":"A1","qty":1}"#.utf8))
        #expect(digest == "4feed4aa29af1cfc85832f96d1ba44e9242ee17094aae3d0793ec8e334e98545")
    }

    @Test func invalidKeysAreBadRequestsAndChangeNothing() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(
            config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs), clock: ManualClock(startMs: Self.nowMs))
        for key in ["", String(repeating: "k", count: 65), "with space", "naïve"] {
            let response = await world.order("u1", key: key)
            #expect(response.status == 400 && response.errorCode == "bad_request", "\(key)")
        }
        #expect(await world.order("u1", key: String(repeating: "k", count: 64)).status == 201)
        #expect(await world.engine.inventory.counters(Self.key)?.reserved == 1)
        await world.stop()
    }

    @Test func refusalsAreReplayedToo() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(
            config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 1), clock: ManualClock(startMs: Self.nowMs))
        #expect(await world.order("u1", key: nil).status == 201)
        let soldOut = await world.order("u2", key: "k")
        #expect(soldOut.errorCode == "sold_out")
        // Stock comes back; the repeat still gets its first answer and takes nothing.
        let restock = await world.engine.restock(event: "e1", sku: "A1", delta: 1)
        #expect((try? restock.get())?.available == 1)
        let again = await world.order("u2", key: "k")
        #expect(again.status == 409 && again.body == soldOut.body)
        #expect(await world.engine.inventory.counters(Self.key)?.available == 1)
        await world.stop()
    }

    @Test(.timeLimit(.minutes(1))) func concurrentRepeatsReserveOnce() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(
            config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 100, limitPerUser: 50),
            clock: ManualClock(startMs: Self.nowMs))
        let answers = await withTaskGroup(of: APIResponse.self) { group in
            for _ in 0..<8 { group.addTask { await world.order("u1", key: "double-tap") } }
            var answers: [APIResponse] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
        #expect(Set(answers.map(\.status)) == [201], "\(answers.map(\.status))")
        #expect(Set(answers.map(\.bodyText)).count == 1, "every repeat sees the one order")
        #expect(await world.engine.inventory.counters(Self.key)?.reserved == 1)
        await world.stop()
    }

    @Test func aRetryAfterARestartGetsTheFirstAnswer() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 10, limitPerUser: 5)
        let clock = ManualClock(startMs: Self.nowMs)
        let before = try await TestEngine.start(config: config, clock: clock)
        let first = await before.order("u1", key: "flaky-phone")
        #expect(first.status == 201)
        let refused = await before.order("u1", qty: 9, key: "too-many")
        #expect(refused.status == 400)
        await before.stop()

        clock.advance(ms: 3_600_000)
        let after = try await TestEngine.start(config: config, clock: clock)
        let again = await after.order("u1", key: "flaky-phone")
        #expect(again.status == 201 && again.body == first.body)
        #expect(await after.order("u1", qty: 9, key: "too-many").body == refused.body)
        #expect(await after.engine.inventory.counters(Self.key)?.reserved == 1)
        // A 400 is not stored (the request never reached the sale)...
        #expect(after.engine.idempotency.entryCount == 1)
        // ...so a corrected retry with the same key is served: it runs (the sale has ended
        // by now) instead of getting the 400 back.
        let corrected = await after.order("u1", qty: 1, key: "too-many")
        #expect(corrected.errorCode == "ended", "\(corrected.bodyText)")
        #expect(after.engine.idempotency.entryCount == 2)
        await after.stop()

        // Past 24 h the key is forgotten (and the first order has long expired).
        clock.advance(ms: EngineLimits.idempotencyWindowMs)
        // The same event, moved so that it is live again.
        let moved = makeTestConfig(dataDirectory: directory.path, nowMs: clock.nowMs(), stock: 10, limitPerUser: 5)
        let later = try await TestEngine.start(config: moved, clock: clock)
        await later.engine.expireDue()
        #expect(later.engine.idempotency.entryCount == 0)
        let fresh = await later.order("u1", key: "flaky-phone")
        #expect(fresh.status == 201 && fresh.json["order"]?.stringValue != first.json["order"]?.stringValue)
        await later.stop()
    }

    @Test func soldOutFlagFollowsTheShard() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(
            config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs, stock: 1), clock: ManualClock(startMs: Self.nowMs))
        let hints = try #require(world.engine.inventory.soldOutHints)
        #expect(!hints.isSoldOut(Self.key))
        let order = await world.order("u1", key: nil)
        #expect(order.status == 201)
        #expect(hints.isSoldOut(Self.key))
        let commits = world.engine.journal!.recordsCommitted
        #expect(await world.order("u2", key: nil).errorCode == "sold_out")
        #expect(world.engine.stats.rejectedSoldOut.load(ordering: .relaxed) == 1)
        #expect(world.engine.journal!.recordsCommitted == commits)
        // Stock comes back by cancel: the flag clears and the next buyer gets it.
        let cancel = await world.api.respond(to: APIRequest(
            method: "POST", path: "/v1/orders/\(order.json["order"]!.stringValue!)/cancel", authorization: world.bearer("u1")))
        #expect(cancel.status == 200)
        #expect(!hints.isSoldOut(Self.key))
        #expect(await world.order("u2", key: nil).status == 201)
        // Expiry brings it back too.
        world.clock.advance(ms: 61_000)
        #expect(await world.engine.expireDue() == 1)
        #expect(!hints.isSoldOut(Self.key))
        await world.engine.inventory.verifyInvariants()
        await world.stop()
    }
}
