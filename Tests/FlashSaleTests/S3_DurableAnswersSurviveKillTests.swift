import Foundation
import NIOHTTP1
import Synchronization
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP

/// Starts the real `flashsaled` binary, kills it with SIGKILL in the middle of a burst of
/// orders, payments, group opens / joins / payments and coupon claims, restarts it on the same
/// data directory, and checks that every acknowledged order, member and coupon is there with
/// at least its acknowledged status, nothing oversold, no group over size, no batch over total.
@Suite(.serialized) struct CrashRecoveryTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var binary: URL? {
        for configuration in ["debug", "release"] {
            let url = packageRoot.appendingPathComponent(".build/\(configuration)/flashsaled")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    static let config = TestSecrets.configHeaderYAML + """
        admission:
          max_inflight: 100000
        payment:
          window: 15m
        group:
          window: 1h
        events:
          - id: crash
            kind: seckill
            starts_at: now-1m
            ends_at: now+1h
            items:
              - sku: K1
                name: Crash test item
                price: 500
                stock: 400
                limit_per_user: 1
              - { sku: K2, name: Coupon check item, price: 500, stock: 100000, limit_per_user: 1 }
          - id: crashg
            kind: groupbuy
            starts_at: now-1m
            ends_at: now+1h
            items:
              - { sku: G1, name: Group item, price: 900, group_price: 600, group_size: 3, stock: 3000, limit_per_user: 1 }
        coupons:
          - id: crashc
            total: \(couponTotal)
            value: 100
            min_spend: 0
            per_user: 1
            per_ip: 1000000
            starts_at: now-1m
            ends_at: now+1h
            valid_for: 1h
        """
    static let couponTotal = 500

    /// A running daemon.
    final class Daemon {
        let process = Process()
        let port: Int
        let stderr: URL

        init(directory: String, port: Int) throws {
            self.port = port
            stderr = URL(fileURLWithPath: directory).appendingPathComponent("stderr-\(UUID().uuidString).log")
            _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
            process.executableURL = CrashRecoveryTests.binary!
            process.arguments = [
                "serve", "--config", directory + "/flashsale.yaml", "--data", directory + "/data",
                "--http", "127.0.0.1:\(port)", "--ops", "127.0.0.1:\(freePort())",
            ]
            process.standardError = try FileHandle(forWritingTo: stderr)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
        }

        func waitReady() async throws {
            for _ in 0..<600 {
                if let ready = try? await HTTPTestConnection.with(port: port, { try await $0.send(.GET, "/readyz").status }), ready == 200 { return }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw DaemonError.notReady(log: (try? String(contentsOf: stderr, encoding: .utf8)) ?? "")
        }

        func kill(_ signal: Int32) {
            Foundation.kill(process.processIdentifier, signal)
            process.waitUntilExit()
        }

        /// Sends `signal` and returns at once (SIGHUP: reload).
        func send(_ signal: Int32) {
            Foundation.kill(process.processIdentifier, signal)
        }

        /// What the daemon has logged so far.
        var log: String { (try? String(contentsOf: stderr, encoding: .utf8)) ?? "" }
    }

    enum DaemonError: Error { case notReady(log: String) }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// What the client was told: order id → (user, acknowledged status).
    final class Acknowledgements: Sendable {
        let entries = Mutex<[String: (user: String, status: String)]>([:])
        func record(_ order: String, user: String, status: String) {
            entries.withLock { $0[order] = (user, status) }
        }
        var count: Int { entries.withLock { $0.count } }
    }

    /// Acknowledged group members (group → [(user, order, status)]) and coupons (code → user).
    final class ClaimAcknowledgements: Sendable {
        let members = Mutex<[String: [(user: String, order: String, status: String)]]>([:])
        let coupons = Mutex<[String: String]>([:])
        func member(_ group: String, user: String, order: String, status: String) {
            members.withLock { table in
                if let index = table[group]?.firstIndex(where: { $0.order == order }) {
                    table[group]![index].status = status
                } else {
                    table[group, default: []].append((user, order, status))
                }
            }
        }
        var groupCount: Int { members.withLock { $0.count } }
        var couponCount: Int { coupons.withLock { $0.count } }
    }

    /// One group worker: opens a group, two more users join, all three pay; repeats.
    static func groupWorker(_ worker: Int, port: Int, acks: ClaimAcknowledgements) async {
        let issuer = BuyerTokenIssuer(secret: TestSecrets.userToken)
        let signer = PaymentSignature(secret: TestSecrets.payment)
        _ = try? await HTTPTestConnection.with(port: port) { http in
            for n in 0..<300 {
                var group: String?
                var orders: [(String, String)] = []
                for member in 0..<3 {
                    let user = "g\(worker)-\(n)-\(member)"
                    let token = issuer.mint(user: user, nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
                    let response = if let group {
                        try await http.send(.POST, "/v1/groups/\(group)/join", headers: [("authorization", "Bearer \(token)")])
                    } else {
                        try await http.send(.POST, "/v1/events/crashg/groups", headers: [("authorization", "Bearer \(token)")], body: Array(#"{"sku":"G1"}"#.utf8))
                    }
                    guard response.status == 201, let id = response.json["group"]?.stringValue, let order = response.json["order"]?.stringValue else { break }
                    group = id
                    orders.append((user, order))
                    acks.member(id, user: user, order: order, status: "pending")
                }
                guard let group else { continue }
                for (user, order) in orders {
                    let body = Array(#"{"order":"\#(order)","transaction":"t-\#(order)","amount":600}"#.utf8)
                    let ts = String(Int64(Date().timeIntervalSince1970))
                    let nonce = "n-\(order)"
                    let paid = try await http.send(.POST, "/v1/payments/notify", headers: [
                        ("x-pay-timestamp", ts), ("x-pay-nonce", nonce), ("x-pay-signature", signer.sign(timestamp: ts, nonce: nonce, body: body)),
                    ], body: body)
                    guard paid.status == 200, let status = paid.json["status"]?.stringValue else { continue }
                    acks.member(group, user: user, order: order, status: status)
                    if status == "formed" {
                        for (other, otherOrder) in orders { acks.member(group, user: other, order: otherOrder, status: "formed") }
                    }
                }
            }
            return ()
        }
    }

    /// One coupon worker: a fresh user claims from batch `crashc`; repeats.
    static func couponWorker(_ worker: Int, port: Int, acks: ClaimAcknowledgements) async {
        let issuer = BuyerTokenIssuer(secret: TestSecrets.userToken)
        _ = try? await HTTPTestConnection.with(port: port) { http in
            for n in 0..<1_000 {
                let user = "c\(worker)-\(n)"
                let token = issuer.mint(user: user, nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
                let response = try await http.send(.POST, "/v1/coupons/crashc/claims", headers: [("authorization", "Bearer \(token)")])
                if response.status == 201, let code = response.json["coupon"]?.stringValue {
                    acks.coupons.withLock { $0[code] = user }
                }
            }
            return ()
        }
    }

    /// After the restart: every acknowledged member is in its group with at least its
    /// acknowledged status, no group is over size, every acknowledged coupon is its owner's to
    /// spend, and the batch cannot be claimed past its total.
    static func checkClaims(_ acks: ClaimAcknowledgements, http: HTTPTestConnection, issuer: BuyerTokenIssuer) async throws {
        let members = acks.members.withLock { $0 }
        let viewer = "Bearer " + issuer.mint(user: "viewer", nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
        for (group, entries) in members {
            let view = try await http.send(.GET, "/v1/groups/\(group)", headers: [("authorization", viewer)])
            #expect(view.status == 200, "acknowledged group \(group) lost")
            let shown = view.json["members"]?.intValue ?? -1
            #expect(shown >= Int64(entries.count) && shown <= 3, "group \(group) shows \(shown) members, \(entries.count) acknowledged")
            for entry in entries {
                let token = issuer.mint(user: entry.user, nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
                let order = try await http.send(.GET, "/v1/orders/\(entry.order)", headers: [("authorization", "Bearer \(token)")])
                let status = order.json["status"]?.stringValue ?? "missing"
                let allowed: Set<String> =
                    switch entry.status {
                    case "formed": ["formed"]
                    case "paid": ["paid", "formed"]
                    default: ["pending", "paid", "formed"]
                    }
                #expect(allowed.contains(status), "member order \(entry.order) was acknowledged \(entry.status), is \(status)")
            }
            if entries.contains(where: { $0.status == "formed" }) {
                #expect(view.json["status"]?.stringValue == "formed", "group \(group) was acknowledged formed")
            }
        }
        let coupons = acks.coupons.withLock { $0 }
        for (code, user) in coupons {
            let token = issuer.mint(user: user, nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
            let order = try await http.send(.POST, "/v1/events/crash/orders", headers: [("authorization", "Bearer \(token)")], body: Array(#"{"sku":"K2","qty":1,"coupon":"\#(code)"}"#.utf8))
            #expect(order.status == 201 && order.json["discount"]?.intValue == 100, "acknowledged coupon \(code) of \(user): \(order.status)")
        }
        var claimedAfter = 0
        for n in 0..<(couponTotal + 1) {
            let token = issuer.mint(user: "after-\(n)", nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
            let response = try await http.send(.POST, "/v1/coupons/crashc/claims", headers: [("authorization", "Bearer \(token)")])
            if response.status == 201 { claimedAfter += 1 } else {
                #expect(response.json["error"]?.stringValue == "exhausted")
                break
            }
        }
        #expect(coupons.count + claimedAfter <= couponTotal, "batch over total: \(coupons.count) acknowledged + \(claimedAfter) after restart")
    }

    @Test(.enabled(if: binary != nil, "build flashsaled first (swift build)"), .timeLimit(.minutes(3)))
    func acknowledgedOrdersSurviveKillNine() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try Self.config.write(toFile: directory.path + "/flashsale.yaml", atomically: true, encoding: .utf8)
        let port = Self.freePort()
        let first = try Daemon(directory: directory.path, port: port)
        try await first.waitReady()

        let acknowledged = Acknowledgements()
        let claimAcks = ClaimAcknowledgements()
        let issuer = BuyerTokenIssuer(secret: TestSecrets.userToken)
        let signer = PaymentSignature(secret: TestSecrets.payment)
        let burst = Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask { await Self.groupWorker(worker, port: port, acks: claimAcks) }
                    group.addTask { await Self.couponWorker(worker, port: port, acks: claimAcks) }
                }
                for worker in 0..<16 {
                    group.addTask {
                        _ = try? await HTTPTestConnection.with(port: port) { http in
                            for n in 0..<1_000 {
                                let user = "w\(worker)-\(n)"
                                let token = issuer.mint(user: user, nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
                                let created = try await http.send(.POST, "/v1/events/crash/orders", headers: [("authorization", "Bearer \(token)")], body: Array(#"{"sku":"K1","qty":1}"#.utf8))
                                guard created.status == 201, let id = created.json["order"]?.stringValue else { continue }
                                acknowledged.record(id, user: user, status: "pending")
                                guard n % 2 == 0 else { continue }
                                let body = Array(#"{"order":"\#(id)","transaction":"t-\#(id)","amount":500}"#.utf8)
                                let ts = String(Int64(Date().timeIntervalSince1970))
                                let nonce = "n-\(id)"
                                let paid = try await http.send(.POST, "/v1/payments/notify", headers: [
                                    ("x-pay-timestamp", ts), ("x-pay-nonce", nonce), ("x-pay-signature", signer.sign(timestamp: ts, nonce: nonce, body: body)),
                                ], body: body)
                                if paid.status == 200, paid.json["status"]?.stringValue == "paid" { acknowledged.record(id, user: user, status: "paid") }
                            }
                            return ()
                        }
                    }
                }
            }
        }
        // Kill mid-burst, once a good number of changes has been acknowledged (bounded: the
        // workers swallow their errors, so a broken endpoint would otherwise hang the test).
        let deadline = ContinuousClock.now + .seconds(60)
        while acknowledged.count < 150 || claimAcks.groupCount < 5 || claimAcks.couponCount < 20 {
            guard ContinuousClock.now < deadline else {
                Issue.record("60 s without enough acknowledgements: \(acknowledged.count) orders, \(claimAcks.groupCount) groups, \(claimAcks.couponCount) coupons")
                break
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        first.kill(SIGKILL)
        await burst.value
        let acks = acknowledged.entries.withLock { $0 }
        #expect(acks.count >= 150)

        let second = try Daemon(directory: directory.path, port: port)
        try await second.waitReady()
        try await HTTPTestConnection.with(port: port) { http in
            var paidSeen = 0
            for (id, ack) in acks {
                let token = issuer.mint(user: ack.user, nowSeconds: Int64(Date().timeIntervalSince1970), ttlSeconds: 600)
                let response = try await http.send(.GET, "/v1/orders/\(id)", headers: [("authorization", "Bearer \(token)")])
                #expect(response.status == 200, "acknowledged order \(id) lost")
                let status = response.json["status"]?.stringValue
                if ack.status == "paid" {
                    #expect(status == "paid", "order \(id) was acknowledged paid, is \(status ?? "missing")")
                } else {
                    #expect(status == "pending" || status == "paid", "order \(id) was acknowledged pending, is \(status ?? "missing")")
                }
                if status == "paid" { paidSeen += 1 }
            }
            let event = try await http.send(.GET, "/v1/events/crash")
            let item = event.json["items"]?[0]
            let total = item?["total"]?.intValue ?? -1
            let available = item?["available"]?.intValue ?? -1
            let reserved = item?["reserved"]?.intValue ?? -1
            let sold = item?["sold"]?.intValue ?? -1
            #expect(total == 400 && total == available + reserved + sold, "counters \(String(describing: item))")
            #expect(sold <= total, "oversold")
            #expect(sold >= Int64(paidSeen), "every paid order is sold")
            #expect(reserved + sold >= Int64(acks.count), "every acknowledged order still holds its unit")
            try await Self.checkClaims(claimAcks, http: http, issuer: issuer)
            return ()
        }
        second.kill(SIGTERM)
        #expect(second.process.terminationStatus == 0, "SIGTERM is a clean stop")
    }
}
