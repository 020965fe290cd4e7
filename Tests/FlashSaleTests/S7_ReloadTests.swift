import FlashSaleTestKit
import Foundation
import Synchronization
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal

/// Reloading the config while serving (SIGHUP, ops RELOAD): what can change live changes, and
/// a reload that cannot be applied whole changes nothing.
@Suite struct ReloadPlanTests {
    static let nowMs: Int64 = 1_795_000_000_000

    static func yaml(events: String = "", secrets: String = "", extra: String = "") -> String {
        """
        secrets:
          user_token: test-user-secret
          payment: test-payment-secret
          ops: test-ops-password
        \(secrets)
        \(extra)
        events:
          - id: e1
            kind: seckill
            starts_at: "2026-11-18T00:00:00Z"
            ends_at: "2026-11-19T00:00:00Z"
            items: [{ sku: A1, name: Phone case, price: 990, stock: 10 }]
        \(events)
        """
    }

    static func parse(_ yaml: String) throws -> SaleConfig {
        try SaleConfig.parse(yaml: yaml, sourceName: "shop.yaml", environment: [:], nowMs: nowMs)
    }

    @Test func whatCannotChangeLiveRefusesTheWholeReloadNamingIt() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        var running = try Self.parse(Self.yaml())
        running.dataDirectory = directory.path
        let world = try await TestEngine.start(config: running, clock: ManualClock(startMs: Self.nowMs))
        let refusals: [(String, String)] = [
            (Self.yaml(extra: "http: 127.0.0.1:9999"), "http"),
            (Self.yaml(extra: "engine: { shards: 7 }"), "engine.shards"),
            (Self.yaml(extra: "payment: { window: 1m }"), "payment.window"),
            (Self.yaml().replacingOccurrences(of: "stock: 10", with: "stock: 11"), "events"),
            (Self.yaml().replacingOccurrences(of: "id: e1", with: "id: e2"), "events"),
        ]
        for (yaml, key) in refusals {
            var new = try Self.parse(yaml)
            new.dataDirectory = directory.path
            guard case .failure(let error) = world.engine.planReload(from: running, to: new) else {
                Issue.record("\(key): a reload was planned")
                continue
            }
            #expect(error.key == key, "\(error)")
            #expect(error.source == "shop.yaml" && error.problem.hasSuffix("nothing was reloaded"))
        }
        #expect(world.engine.catalog.events.map(\.config.id) == ["e1"])
        await world.stop()
    }

    @Test func aReloadAddsEventsAndRotatesKeysWithoutLoggingAnyoneOut() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = ManualClock(startMs: Self.nowMs)
        var running = try Self.parse(Self.yaml(secrets: "  user_tokens: [{ kid: k1, secret: first-key-0123456 }]"))
        running.dataDirectory = directory.path
        let world = try await TestEngine.start(config: running, clock: clock)
        let api = BuyerAPI(engine: world.engine)
        let k1 = BuyerTokenIssuer(key: TokenKey(kid: "k1", secret: "first-key-0123456"))
        let k2 = BuyerTokenIssuer(key: TokenKey(kid: "k2", secret: "second-key-012345"))
        let plain = BuyerTokenIssuer(secret: "test-user-secret")
        func status(_ issuer: BuyerTokenIssuer, _ user: String) async -> Int {
            let token = issuer.mint(user: user, nowSeconds: clock.nowMs() / 1000, ttlSeconds: 600)
            let answer = await api.respond(to: APIRequest(
                method: "POST", path: "/v1/events/e1/orders", authorization: "Bearer " + token, body: Array(#"{"sku":"A1","qty":1}"#.utf8)))
            return answer.status
        }
        #expect(await status(k1, "u1") == 201)
        #expect(await status(k2, "u2") == 401, "k2 is not listed yet")
        #expect(await status(plain, "u3") == 201, "the single user_token stays valid")

        // k2 first (it signs from now on), k1 still listed; and a new event.
        var rotated = try Self.parse(Self.yaml(
            events: "  - { id: added, kind: seckill, starts_at: now-1m, ends_at: now+1h, items: [{ sku: B1, name: Mug, price: 100, stock: 5 }] }",
            secrets: "  user_tokens: [{ kid: k2, secret: second-key-012345 }, { kid: k1, secret: first-key-0123456 }]"))
        rotated.dataDirectory = directory.path
        let plan = try world.engine.planReload(from: running, to: rotated).get()
        #expect(plan.newEvents.map(\.id) == ["added"])
        await world.engine.apply(plan)
        #expect(await status(k2, "u4") == 201)
        #expect(await status(k1, "u5") == 201, "a token of the old key works while it is listed")
        #expect(world.engine.catalog.event("added") != nil)
        #expect(rotated.secrets.signingKey.kid == "k2", "flashsaled token signs with the first")

        // A new coupon batch in the file is claimable after a reload.
        var withBatch = try Self.parse(Self.yaml(
            events: "  - { id: added, kind: seckill, starts_at: now-1m, ends_at: now+1h, items: [{ sku: B1, name: Mug, price: 100, stock: 5 }] }",
            secrets: "  user_tokens: [{ kid: k2, secret: second-key-012345 }, { kid: k1, secret: first-key-0123456 }]",
            extra: "coupons: [{ id: reloaded-c, total: 5, value: 100, starts_at: now-1m, ends_at: now+1h }]"))
        withBatch.dataDirectory = directory.path
        let batchPlan = try world.engine.planReload(from: rotated, to: withBatch).get()
        #expect(batchPlan.newBatches.map(\.id) == ["reloaded-c"] && batchPlan.newEvents.isEmpty)
        await world.engine.apply(batchPlan)
        let claimed = await api.respond(to: APIRequest(
            method: "POST", path: "/v1/coupons/reloaded-c/claims",
            authorization: "Bearer " + k2.mint(user: "c1", nowSeconds: clock.nowMs() / 1000, ttlSeconds: 600)))
        #expect(claimed.status == 201, "\(claimed.bodyText)")
        var changedBatch = withBatch
        changedBatch.coupons[0].total = 6
        #expect((try? world.engine.planReload(from: withBatch, to: changedBatch).get()) == nil, "a running batch changes only with a restart")

        // k1 removed: its tokens stop, even one verified (and cached) before.
        var removed = try Self.parse(Self.yaml(
            events: "  - { id: added, kind: seckill, starts_at: now-1m, ends_at: now+1h, items: [{ sku: B1, name: Mug, price: 100, stock: 5 }] }",
            secrets: "  user_tokens: [{ kid: k2, secret: second-key-012345 }]"))
        removed.dataDirectory = directory.path
        removed.coupons = withBatch.coupons
        await world.engine.apply(try world.engine.planReload(from: withBatch, to: removed).get())
        #expect(await status(k1, "u1") == 401)
        #expect(await status(k2, "u6") == 201)
        await world.stop()
    }
}

/// The real daemon reloading on SIGHUP while an order burst runs.
@Suite(.serialized) struct ReloadDaemonTests {
    static func config(extraEvent: Bool, keys: String, webhook: String? = nil) -> String {
        TestSecrets.configHeaderYAML.replacingOccurrences(of: "  user_token: \(TestSecrets.userToken)\n", with: "  user_token: \(TestSecrets.userToken)\n" + keys)
            + (webhook.map { "webhooks:\n  - { url: \"\($0)\", secret: reload-receiver-secret }\n" } ?? "")
            + """
            events:
              - id: live
                kind: seckill
                starts_at: now-1m
                ends_at: now+1h
                items:
                  - { sku: L1, name: Burst item, price: 500, stock: 100000, limit_per_user: 1 }

            """
            + (extraEvent ? """
              - id: added
                kind: seckill
                starts_at: "2026-01-01T00:00:00Z"
                ends_at: "2099-01-01T00:00:00Z"
                items:
                  - { sku: N1, name: New item, price: 700, stock: 10, limit_per_user: 1 }

            """ : "")
    }

    @Test(.enabled(if: CrashRecoveryTests.binary != nil, "build flashsaled first (swift build)"), .timeLimit(.minutes(2)))
    func aGoodReloadAddsAnEventDuringABurstWithNoFailedRequestAndABadOneChangesNothing() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/flashsale.yaml"
        try Self.config(extraEvent: false, keys: "").write(toFile: path, atomically: true, encoding: .utf8)
        let port = CrashRecoveryTests.freePort()
        let daemon = try CrashRecoveryTests.Daemon(directory: directory.path, port: port)
        defer { daemon.kill(SIGKILL) }
        try await daemon.waitReady()
        let issuer = BuyerTokenIssuer(secret: TestSecrets.userToken)
        let statuses = Mutex<[Int]>([])
        let burst = Task {
            try await HTTPTestConnection.with(port: port) { http in
                for n in 0..<400 {
                    let token = issuer.mint(user: "b\(n)", nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
                    let answer = try await http.send(
                        .POST, "/v1/events/live/orders", headers: [("authorization", "Bearer \(token)")], body: Array(#"{"sku":"L1","qty":1}"#.utf8))
                    statuses.withLock { $0.append(answer.status) }
                }
            }
        }
        try await pollUntil { statuses.withLock { $0.count } >= 50 }
        // A broken file: refused whole, the daemon serves on unchanged.
        try Self.config(extraEvent: true, keys: "").replacingOccurrences(of: "events:", with: "evnts:").write(toFile: path, atomically: true, encoding: .utf8)
        daemon.send(SIGHUP)
        try await pollUntil { daemon.log.contains("config reload refused") }
        #expect(daemon.log.contains("evnts"), "the refusal names the key")
        // A good one: the new event appears while the burst goes on, and a webhook receiver
        // added by the same reload gets the feed from its start.
        let receiver = try await WebhookTestReceiver { _ in .status(200) }
        let k2 = TokenKey(kid: "k2", secret: "second-key-012345")
        try Self.config(extraEvent: true, keys: "  user_tokens: [{ kid: k2, secret: \(k2.secret) }]\n", webhook: receiver.url)
            .write(toFile: path, atomically: true, encoding: .utf8)
        daemon.send(SIGHUP)
        var shown = 0
        for _ in 0..<200 where shown != 200 {
            shown = (try? await HTTPTestConnection.with(port: port, { try await $0.send(.GET, "/v1/events/added").status })) ?? 0
            if shown != 200 { try await Task.sleep(for: .milliseconds(25)) }
        }
        #expect(shown == 200, "the new event is on sale: \(daemon.log.suffix(3000))")
        try await burst.value
        let answered = statuses.withLock { $0 }
        #expect(answered.count == 400 && answered.allSatisfy { $0 == 201 }, "no failed request: \(Set(answered))")
        try await HTTPTestConnection.with(port: port) { http in
            let token = BuyerTokenIssuer(key: k2).mint(user: "n1", nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
            let ordered = try await http.send(
                .POST, "/v1/events/added/orders", headers: [("authorization", "Bearer \(token)")], body: Array(#"{"sku":"N1","qty":1}"#.utf8))
            #expect(ordered.status == 201, "ordered in the new event with the new key")
        }
        try await pollUntil { receiver.accepted.contains { $0.id == 1 } }
        #expect(receiver.accepted.first?.id == 1, "the new receiver starts from the oldest change kept")
        try await receiver.close()
    }
}


/// An event created through the admin API of the real daemon survives `kill -9` right after its `201`.
@Suite(.serialized) struct AdminKillTests {
    @Test(.enabled(if: CrashRecoveryTests.binary != nil, "build flashsaled first (swift build)"), .timeLimit(.minutes(2)))
    func aKillNineAfterA201KeepsTheNewEvent() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let config = TestSecrets.configHeaderYAML.replacingOccurrences(
            of: "  ops: \(TestSecrets.ops)\n", with: "  ops: \(TestSecrets.ops)\n  admin: \(TestSecrets.admin)\n")
            + """
            events:
              - { id: live, kind: seckill, starts_at: now-1m, ends_at: now+1h, items: [{ sku: L1, name: Item, price: 500, stock: 10 }] }
            """
        try config.write(toFile: directory.path + "/flashsale.yaml", atomically: true, encoding: .utf8)
        let port = CrashRecoveryTests.freePort()
        let first = try CrashRecoveryTests.Daemon(directory: directory.path, port: port)
        try await first.waitReady()
        let body = #"{"id": "after-kill", "kind": "seckill", "starts_at": "now-1m", "ends_at": "now+1h", "items": [{"sku": "K1", "name": "Kept", "price": 100, "stock": 2}]}"#
        let created = try await HTTPTestConnection.with(port: port) { http in
            try await http.send(.POST, "/v1/admin/events", headers: [("authorization", "Bearer \(TestSecrets.admin)")], body: Array(body.utf8))
        }
        #expect(created.status == 201)
        first.kill(SIGKILL)

        let second = try CrashRecoveryTests.Daemon(directory: directory.path, port: port)
        defer { second.kill(SIGTERM) }
        try await second.waitReady()
        try await HTTPTestConnection.with(port: port) { http in
            #expect(try await http.send(.GET, "/v1/events/after-kill").status == 200)
            let token = BuyerTokenIssuer(secret: TestSecrets.userToken).mint(user: "k1", nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
            let ordered = try await http.send(
                .POST, "/v1/events/after-kill/orders", headers: [("authorization", "Bearer \(token)")], body: Array(#"{"sku":"K1","qty":1}"#.utf8))
            #expect(ordered.status == 201)
        }
    }
}

/// The outbox across a reload of the webhook receivers.
@Suite struct OutboxReloadTests {
    @Test func aReceiverListedAgainResumesFromItsCursor() {
        let outbox = WebhookOutbox(urls: ["http://a/"])
        outbox.restore(cursors: ["http://a/": 5, "http://b/": 7], parked: [])
        outbox.update("http://a/") { $0.deliveredThrough = 9 }
        outbox.replaceReceivers(urls: ["http://b/", "http://c/"])
        #expect(outbox.snapshot.map(\.url) == ["http://b/", "http://c/"])
        #expect(outbox.snapshot.map(\.deliveredThrough) == [7, 0], "b's journaled cursor; c is new")
        outbox.replaceReceivers(urls: ["http://a/"])
        #expect(outbox.receiver("http://a/")?.deliveredThrough == 9, "a where it stood when it was dropped")
    }
}
