import FlashSale
import Foundation
import Histogram
import NIOCore
import NIOHTTP1

/// The endpoints a run measures, each with its own latency histogram.
enum Endpoint: String, CaseIterable, Sendable {
    case order, groupOpen = "group_open", groupJoin = "group_join", coupon, pay, retry, bot
}

/// What to do with an answer.
enum FollowUp {
    case order(item: Int, pay: Bool, retry: Bool)
    case retry(firstOrder: String)
    case groupOpen(item: Int, pay: Bool)
    case groupJoin(item: Int, group: String, pay: Bool)
    case pay(item: Int, group: String?)
    case coupon(batch: Int)
    case bot
}

/// A seckill or group item the scenario's server config puts on sale.
struct SaleItem: Sendable {
    var event: String
    var sku: String
    /// What one unit costs: the price for seckill, the group price for group-buy.
    var priceFen: Int64
    /// Group size for group-buy items, nil for seckill.
    var groupSize: Int?
}

/// Latency histogram in microseconds, up to a minute.
typealias LatencyHistogram = Histogram<UInt64>
func makeLatencyHistogram() -> LatencyHistogram {
    LatencyHistogram(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
}

/// One second of the run, by the second in which answers arrived (offered: by intended time).
/// Its latency percentiles are fixed when the second has passed (`LoadRun.closeSeconds`): one
/// histogram serves the open second, so memory does not grow with the run's length.
struct SecondStats {
    var offered = 0
    var achieved = 0
    var outcomes: [String: Int] = [:]
    /// Latency percentiles of the answers in this second, µs (0: none, or not closed yet).
    var p50Us: UInt64 = 0
    var p99Us: UInt64 = 0
}

/// What the run saw, for the audit: only answers it received count.
struct Observed: Sendable {
    /// Paid seckill units per item index (answers `paid` without `duplicate`).
    var paidUnits: [Int: Int] = [:]
    /// Groups that answered `formed` to a member's payment, per item index.
    var groupsFormed: [Int: Int] = [:]
    /// What a payment paid for: seckill and group items are numbered apart, so both count.
    struct PaidItem: Hashable, Sendable {
        var index: Int
        var isGroup: Bool
    }
    /// Payments sent with no answer (the server may or may not have taken them), per item.
    var paymentsUnanswered: [PaidItem: Int] = [:]
    /// Coupons claimed (201) per batch index, and claims with no answer.
    var couponsClaimed: [Int: Int] = [:]
    var claimsUnanswered: [Int: Int] = [:]
    /// Retries with the same Idempotency-Key that got the first order back / another one.
    var retriesSame = 0
    var retriesDifferent = 0
    var groupIDs: [String] = []
}

/// Drives one run on one event loop: sends each arrival at its time, follows answers up
/// (payments, retries, joins), and counts. Confined to `loop` (hence `@unchecked Sendable`).
final class LoadRun: @unchecked Sendable {
    let loop: EventLoop
    let scenario: Scenario
    let schedule: [Arrival]
    let seckillItems: [SaleItem]
    let groupItems: [SaleItem]
    let batches: [String]
    private let tokens: [String]
    private let botTokens: [String]
    private let signer: PaymentSignature
    private var pool: ConnectionPool!
    private var random: SeededGenerator

    private var startUptimeNs: UInt64 = 0
    private var next = 0
    private var sequence = 0
    private(set) var inflight = 0
    private(set) var sent = 0
    private var openGroups: [(group: String, item: Int)] = []
    private var tick: RepeatedTask?
    private(set) var finishedSchedule = false
    private var ended = false
    /// Payments and claims sent and not answered yet, per item / batch: unknown to the audit.
    private var outstandingPays: [Observed.PaidItem: Int] = [:]
    private var outstandingClaims: [Int: Int] = [:]

    private(set) var seconds: [SecondStats] = []
    /// The second answers are arriving in, and their latencies so far.
    private var openSecond = 0
    private var openSecondLatency = makeLatencyHistogram()
    /// Answers per outcome over the whole run (the progress line's totals).
    private(set) var outcomeTotals: [String: Int] = [:]
    private(set) var endpointLatency: [Endpoint: LatencyHistogram] = [:]
    private(set) var endpointOutcomes: [Endpoint: [String: Int]] = [:]
    private(set) var observed = Observed()

    init(
        loop: EventLoop, scenario: Scenario, config: SaleConfig, target: SocketAddress
    ) throws {
        self.loop = loop
        self.scenario = scenario
        self.schedule = buildSchedule(scenario)
        var seckill: [SaleItem] = []
        var group: [SaleItem] = []
        for event in config.events {
            for item in event.items {
                if event.kind == .groupbuy, let size = item.groupSize {
                    group.append(SaleItem(event: event.id, sku: item.sku, priceFen: item.groupPriceFen ?? item.priceFen, groupSize: size))
                } else if event.kind == .seckill {
                    seckill.append(SaleItem(event: event.id, sku: item.sku, priceFen: item.priceFen, groupSize: nil))
                }
            }
        }
        seckillItems = seckill
        groupItems = group
        batches = config.coupons.map(\.id)
        if seckill.isEmpty, scenario.mix.order > 0 || scenario.botIPs > 0 { throw ScenarioError("orders in the mix but no seckill item") }
        if group.isEmpty, scenario.mix.groupOpen + scenario.mix.groupJoin > 0 {
            throw ScenarioError("groups in the mix but no group-buy item")
        }
        if batches.isEmpty, scenario.mix.coupon > 0 { throw ScenarioError("coupons in the mix but no coupon batch") }
        let issuer = BuyerTokenIssuer(key: config.secrets.signingKey)
        let now = Int64(Date().timeIntervalSince1970)
        let ttl = Int64(scenario.durationSeconds + scenario.drainSeconds) + 3600
        tokens = (0..<scenario.users).map { issuer.mint(user: "u\($0)", nowSeconds: now, ttlSeconds: ttl) }
        botTokens = (0..<max(scenario.botIPs, 1)).map { issuer.mint(user: "bot\($0)", nowSeconds: now, ttlSeconds: ttl) }
        signer = PaymentSignature(secret: config.secrets.payment)
        random = SeededGenerator(seed: scenario.seed &+ 1)
        for endpoint in Endpoint.allCases { endpointLatency[endpoint] = makeLatencyHistogram() }
        pool = ConnectionPool(loop: loop, target: target, connectionsMax: scenario.connectionsMax) { [unowned self] request, answer in
            self.receive(request, answer)
        }
    }

    /// Nanoseconds since the run started.
    var elapsedNs: UInt64 { DispatchTime.now().uptimeNanoseconds &- startUptimeNs }

    var openConnections: Int { pool.openCount }
    var connectFailures: Int { pool.connectFailures }

    /// Starts sending (call on `loop`). The schedule is checked every millisecond.
    func begin() {
        loop.preconditionInEventLoop()
        startUptimeNs = DispatchTime.now().uptimeNanoseconds
        tick = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { [unowned self] _ in
            self.sendDue()
        }
    }

    /// Stops the pool; answers still outstanding are left unanswered.
    func end() {
        ended = true
        tick?.cancel()
        pool.close()
    }

    private func sendDue() {
        let now = elapsedNs
        while next < schedule.count, schedule[next].atNs <= now {
            dispatch(schedule[next])
            next += 1
        }
        if next == schedule.count {
            finishedSchedule = true
            tick?.cancel()
        }
    }

    /// Fixes the open second's percentiles once answers arrive in a later `index` (or the run
    /// is read), and starts the histogram afresh.
    func closeSeconds(before index: Int) {
        guard index > openSecond else { return }
        if openSecondLatency.totalCount > 0 {
            seconds[openSecond].p50Us = openSecondLatency.valueAtPercentile(50)
            seconds[openSecond].p99Us = openSecondLatency.valueAtPercentile(99)
            openSecondLatency.reset()
        }
        openSecond = index
    }

    private func second(_ ns: UInt64) -> Int {
        let index = Int(ns / 1_000_000_000)
        while seconds.count <= index { seconds.append(SecondStats()) }
        return index
    }

    private func dispatch(_ arrival: Arrival) {
        seconds[second(arrival.atNs)].offered += 1
        sequence += 1
        let user = Int(arrival.user)
        let buyerIP = sourceAddress(index: user % scenario.sourceIPs, bot: false)
        switch arrival.kind {
        case .order:
            let item = Int(random.next() % UInt64(seckillItems.count))
            let pay = random.unit() < scenario.payShare
            let retry = random.unit() < scenario.retryShare
            send(
                .order, at: arrival.atNs, from: buyerIP, .POST, "/v1/events/\(seckillItems[item].event)/orders",
                token: tokens[user], key: "k\(sequence)", body: #"{"sku":"\#(seckillItems[item].sku)","qty":1}"#,
                .order(item: item, pay: pay, retry: retry))
        case .bot:
            let item = Int(random.next() % UInt64(seckillItems.count))
            send(
                .bot, at: arrival.atNs, from: sourceAddress(index: user, bot: true), .POST,
                "/v1/events/\(seckillItems[item].event)/orders", token: botTokens[user], key: nil,
                body: #"{"sku":"\#(seckillItems[item].sku)","qty":1}"#, .bot)
        case .groupJoin where !openGroups.isEmpty:
            let pick = openGroups[Int(random.next() % UInt64(min(openGroups.count, 64))) + max(0, openGroups.count - 64)]
            send(
                .groupJoin, at: arrival.atNs, from: buyerIP, .POST, "/v1/groups/\(pick.group)/join", token: tokens[user],
                key: nil, body: "", .groupJoin(item: pick.item, group: pick.group, pay: random.unit() < scenario.payShare))
        case .groupOpen, .groupJoin:
            let item = Int(random.next() % UInt64(groupItems.count))
            send(
                .groupOpen, at: arrival.atNs, from: buyerIP, .POST, "/v1/events/\(groupItems[item].event)/groups",
                token: tokens[user], key: nil, body: #"{"sku":"\#(groupItems[item].sku)"}"#,
                .groupOpen(item: item, pay: random.unit() < scenario.payShare))
        case .coupon:
            let batch = Int(random.next() % UInt64(batches.count))
            outstandingClaims[batch, default: 0] += 1
            send(
                .coupon, at: arrival.atNs, from: buyerIP, .POST, "/v1/coupons/\(batches[batch])/claims", token: tokens[user],
                key: nil, body: "", .coupon(batch: batch))
        }
    }

    private func send(
        _ endpoint: Endpoint, at intendedNs: UInt64, from address: String, _ method: HTTPMethod, _ uri: String,
        token: String?, key: String?, body: String, _ followUp: FollowUp
    ) {
        var headers: [(String, String)] = []
        if let token { headers.append(("authorization", "Bearer " + token)) }
        if let key { headers.append(("idempotency-key", key)) }
        if !body.isEmpty { headers.append(("content-type", "application/json")) }
        let request = OutgoingRequest(
            endpoint: endpoint, intendedNs: intendedNs, sourceIP: address, method: method, uri: uri, headers: headers,
            body: Array(body.utf8), followUp: followUp)
        inflight += 1
        sent += 1
        pool.send(request)
    }

    private func pay(order: String, amountFen: Int64, item: Int, group: String?) {
        sequence += 1
        let body = Array(#"{"order":"\#(order)","transaction":"tx-\#(order)","amount":\#(amountFen)}"#.utf8)
        let timestamp = String(Int64(Date().timeIntervalSince1970))
        let nonce = "n\(sequence)-\(order)"
        let signature = signer.sign(timestamp: timestamp, nonce: nonce, body: body)
        let request = OutgoingRequest(
            endpoint: .pay, intendedNs: elapsedNs, sourceIP: "127.77.0.\(sequence % 8 + 1)", method: .POST,
            uri: "/v1/payments/notify",
            headers: [
                ("content-type", "application/json"), ("x-pay-timestamp", timestamp), ("x-pay-nonce", nonce),
                ("x-pay-signature", signature),
            ], body: body, followUp: .pay(item: item, group: group))
        outstandingPays[Observed.PaidItem(index: item, isGroup: group != nil), default: 0] += 1
        inflight += 1
        sent += 1
        pool.send(request)
    }

    private func receive(_ request: OutgoingRequest, _ answer: Answer) {
        guard !ended else { return }  // connections closed by `end()`: already counted unanswered
        inflight -= 1
        let now = elapsedNs
        let latencyUs = max(1, (now &- min(now, request.intendedNs)) / 1000)
        let json = answer.status == 0 ? nil : try? JSONParser.parse(answer.body)
        let outcome: String =
            switch answer.status {
            case 0: "conn_error"
            case 200..<300: "ok"
            default: json?["error"]?.stringValue ?? "http_\(answer.status)"
            }
        let index = second(now)
        closeSeconds(before: index)
        seconds[index].achieved += 1
        seconds[index].outcomes[outcome, default: 0] += 1
        outcomeTotals[outcome, default: 0] += 1
        _ = openSecondLatency.record(latencyUs)
        _ = endpointLatency[request.endpoint]!.record(latencyUs)
        endpointOutcomes[request.endpoint, default: [:]][outcome, default: 0] += 1

        switch request.followUp {
        case .order(let item, let pay, let retry):
            guard answer.status == 201, let order = json?["order"]?.stringValue else { return }
            if pay { self.pay(order: order, amountFen: json?["amount"]?.intValue ?? seckillItems[item].priceFen, item: item, group: nil) }
            if retry {
                var again = request
                again.endpoint = .retry
                again.intendedNs = now
                again.followUp = .retry(firstOrder: order)
                inflight += 1
                sent += 1
                pool.send(again)
            }
        case .retry(let firstOrder):
            guard answer.status == 201 else { return }
            if json?["order"]?.stringValue == firstOrder { observed.retriesSame += 1 } else { observed.retriesDifferent += 1 }
        case .groupOpen(let item, let pay):
            guard answer.status == 201, let group = json?["group"]?.stringValue, let order = json?["order"]?.stringValue else { return }
            openGroups.append((group, item))
            if openGroups.count > 4096 { openGroups.removeFirst(1024) }
            if observed.groupIDs.count < Self.auditedGroupsMax { observed.groupIDs.append(group) }
            if pay { self.pay(order: order, amountFen: groupItems[item].priceFen, item: item, group: group) }
        case .groupJoin(let item, let group, let pay):
            if answer.status == 201, let order = json?["order"]?.stringValue {
                if pay { self.pay(order: order, amountFen: groupItems[item].priceFen, item: item, group: group) }
            } else if outcome == "group_full" || outcome == "group_closed" {
                openGroups.removeAll { $0.group == group }
            }
        case .pay(let item, let group):
            let paid = Observed.PaidItem(index: item, isGroup: group != nil)
            outstandingPays[paid, default: 0] -= 1
            if answer.status == 0 {
                observed.paymentsUnanswered[paid, default: 0] += 1
                return
            }
            guard answer.status == 200, json?["duplicate"] == nil else { return }
            let status = json?["status"]?.stringValue
            if group == nil, status == "paid" { observed.paidUnits[item, default: 0] += 1 }
            if let group, status == "formed" {
                observed.groupsFormed[item, default: 0] += 1
                openGroups.removeAll { $0.group == group }
            }
        case .coupon(let batch):
            outstandingClaims[batch, default: 0] -= 1
            if answer.status == 201 { observed.couponsClaimed[batch, default: 0] += 1 }
            if answer.status == 0 { observed.claimsUnanswered[batch, default: 0] += 1 }
        case .bot:
            break
        }
    }

    /// What the audit may count on: requests still in flight are unanswered.
    var observedAtEnd: Observed {
        var result = observed
        for (item, count) in outstandingPays { result.paymentsUnanswered[item, default: 0] += count }
        for (batch, count) in outstandingClaims { result.claimsUnanswered[batch, default: 0] += count }
        return result
    }

    /// Groups checked one by one over HTTP in the audit (the first ones opened).
    static let auditedGroupsMax = 300
}
