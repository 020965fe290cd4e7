import FlashSaleTestKit
import Foundation
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal

/// Webhooks across `kill -9` of the real daemon (§6: a restart resumes where delivery
/// stood): every change arrives at least once, and each run of the daemon delivers in id order.
@Suite(.serialized) struct WebhookKillTests {
    static let orders = 20

    static func config(receiverURL: String) -> String {
        TestSecrets.configHeaderYAML + """
            webhooks:
              - url: \(receiverURL)
                secret: receiver-secret-0123
            events:
              - id: hook
                kind: seckill
                starts_at: now-1m
                ends_at: now+1h
                items:
                  - { sku: H1, name: Hook item, price: 500, stock: 1000, limit_per_user: 1 }
            """
    }

    @Test(.enabled(if: CrashRecoveryTests.binary != nil, "build flashsaled first (swift build)"), .timeLimit(.minutes(2)))
    func everyChangeArrivesAtLeastOnceInOrderAcrossKillNine() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // Five changes accepted, then the receiver hangs: the daemon is killed mid-delivery.
        let receiver = try await WebhookTestReceiver { seen in seen < 5 ? .status(200) : .hang }
        try Self.config(receiverURL: receiver.url).write(toFile: directory.path + "/flashsale.yaml", atomically: true, encoding: .utf8)
        let port = CrashRecoveryTests.freePort()
        let first = try CrashRecoveryTests.Daemon(directory: directory.path, port: port)
        try await first.waitReady()
        let issuer = BuyerTokenIssuer(secret: TestSecrets.userToken)
        try await HTTPTestConnection.with(port: port) { http in
            for n in 0..<Self.orders {
                let token = issuer.mint(user: "k\(n)", nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
                let created = try await http.send(
                    .POST, "/v1/events/hook/orders", headers: [("authorization", "Bearer \(token)")], body: Array(#"{"sku":"H1","qty":1}"#.utf8))
                #expect(created.status == 201)
            }
        }
        try await pollUntil { receiver.deliveries.count >= 6 }
        // The cursor of the five accepted changes is on disk (read as a restart would).
        try await pollUntil { (try? Journal.recover(directory: directory.path + "/data").webhookCursors[receiver.url]) == 5 }
        first.kill(SIGKILL)
        let beforeRestart = receiver.deliveries.count
        receiver.setBehavior { _ in .status(200) }

        let second = try CrashRecoveryTests.Daemon(directory: directory.path, port: port)
        try await second.waitReady()
        try await pollUntil { Set(receiver.accepted.map(\.id)).count >= Self.orders }
        second.kill(SIGTERM)
        try await receiver.close()

        let all = receiver.deliveries
        #expect(Set(receiver.accepted.map(\.id)) == Set(1...Int64(Self.orders)), "every change delivered at least once")
        let firstRun = all[..<beforeRestart].map(\.id)
        #expect(firstRun == firstRun.sorted(), "in id order before the kill: \(firstRun)")
        let afterRestart = all[beforeRestart...].filter(\.answered).map(\.id)
        #expect(afterRestart == afterRestart.sorted() && Set(afterRestart).count == afterRestart.count, "in id order after the restart: \(afterRestart)")
        #expect(afterRestart.first == 6, "resumed after the durable cursor: \(afterRestart)")
    }
}
