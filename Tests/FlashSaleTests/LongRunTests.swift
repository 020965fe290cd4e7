import Foundation
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP

/// The real `flashsaled`, after a long run of small commits and scrapes, stops on SIGTERM with
/// exit status 0. Before the fix a daemon that had committed some ten thousand batches died
/// with a segmentation fault after logging `stopped`: the journal's commit observer (and the
/// metrics' connection reader, at every scrape) gained a reabstraction thunk each time it was
/// read out of its `Mutex`, and releasing the chain at shutdown overflowed the stack.
@Suite(.serialized) struct LongRunTests {
    static let config = TestSecrets.configHeaderYAML + """
        events:
          - id: long
            kind: seckill
            starts_at: now-1m
            ends_at: now+1h
            items:
              - { sku: L1, name: Long run item, price: 100, stock: 1000000, limit_per_user: 100000 }
        """

    /// Orders sent one after another on one connection, so each is its own journal commit.
    static let orders = 20_000
    /// A `/metrics` scrape every this many orders.
    static let scrapeEvery = 20

    @Test(.enabled(if: CrashRecoveryTests.binary != nil, "build flashsaled first (scripts/test.sh does)"))
    func sigtermAfterALongRunExitsZero() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try Self.config.write(toFile: directory.path + "/flashsale.yaml", atomically: true, encoding: .utf8)
        let daemon = try CrashRecoveryTests.Daemon(directory: directory.path, port: CrashRecoveryTests.freePort())
        try await daemon.waitReady()

        let issuer = BuyerTokenIssuer(secret: TestSecrets.userToken)
        let users = (0..<100).map { "Bearer " + issuer.mint(user: "long\($0)", nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 3_600) }
        let created = try await HTTPTestConnection.with(port: daemon.port) { http in
            var created = 0
            for n in 0..<Self.orders {
                let answer = try await http.send(
                    .POST, "/v1/events/long/orders", headers: [("authorization", users[n % users.count])],
                    body: Array(#"{"sku":"L1","qty":1}"#.utf8))
                if answer.status == 201 { created += 1 }
                if n % Self.scrapeEvery == 0 { #expect(try await http.send(.GET, "/metrics").status == 200) }
            }
            return created
        }
        #expect(created == Self.orders)

        daemon.kill(SIGTERM)
        let log = (try? String(contentsOf: daemon.stderr, encoding: .utf8)) ?? ""
        #expect(daemon.process.terminationReason == .exit, "flashsaled died of signal \(daemon.process.terminationStatus); log tail: \(log.suffix(500))")
        #expect(daemon.process.terminationStatus == 0, "log tail: \(log.suffix(500))")
        #expect(log.contains("stopped"))
    }
}
