import FlashSale

/// One item's stock counters as ops `EVENT` reports them.
struct ItemCounters: Codable, Sendable {
    var total: Int
    var available: Int
    var reserved: Int
    var sold: Int
}

/// One audit check and whether it held.
struct AuditCheck: Codable, Sendable {
    var name: String
    var ok: Bool
    var detail: String
}

/// Every item's counters, keyed `event/sku`, read over the ops port.
func readCounters(_ ops: OpsClient, events: [String]) async throws -> [String: ItemCounters] {
    var counters: [String: ItemCounters] = [:]
    for event in events {
        for line in try await ops.run("EVENT \(event)") where line.hasPrefix("item ") {
            let fields = OpsClient.fields(line)
            guard let sku = fields["sku"], let total = fields["total"].flatMap(Int.init),
                let available = fields["available"].flatMap(Int.init),
                let reserved = fields["reserved"].flatMap(Int.init), let sold = fields["sold"].flatMap(Int.init)
            else { throw ClientError("ops EVENT \(event): cannot read \(line)") }
            counters["\(event)/\(sku)"] = ItemCounters(total: total, available: available, reserved: reserved, sold: sold)
        }
    }
    return counters
}

/// `STATS` as numbers.
func readStats(_ ops: OpsClient) async throws -> [String: Int] {
    var stats: [String: Int] = [:]
    for line in try await ops.run("STATS") {
        for (key, value) in OpsClient.fields(line) { stats[key] = Int(value) }
    }
    return stats
}

/// The end-of-run audit: the no-oversell promise and the run's own accounting, from the ops
/// port and the HTTP API. `before` are the counters read before the first arrival, so a
/// daemon that already sold something is audited on what this run changed.
func audit(
    run: LoadRunResult, config: SaleConfig, before: [String: ItemCounters], after: [String: ItemCounters],
    statsBefore: [String: Int], statsAfter: [String: Int], http: AuditHTTP, bearer: String
) async throws -> [AuditCheck] {
    var checks: [AuditCheck] = []
    func check(_ name: String, _ ok: Bool, _ detail: String) { checks.append(AuditCheck(name: name, ok: ok, detail: detail)) }

    for (key, counters) in after.sorted(by: { $0.key < $1.key }) {
        check(
            "\(key): sold ≤ total", counters.sold <= counters.total, "sold \(counters.sold), total \(counters.total)")
        check(
            "\(key): total = available + reserved + sold",
            counters.total == counters.available + counters.reserved + counters.sold,
            "\(counters.total) vs \(counters.available) + \(counters.reserved) + \(counters.sold)")
    }

    for event in config.events {
        let (status, json) = try await http.get("/v1/events/\(event.id)")
        guard status == 200, case .array(let items)? = json["items"] else {
            check("GET /v1/events/\(event.id)", false, "status \(status)")
            continue
        }
        for item in items {
            guard let sku = item["sku"]?.stringValue, let counters = after["\(event.id)/\(sku)"] else { continue }
            let sold = Int(item["sold"]?.intValue ?? -1)
            check("\(event.id)/\(sku): HTTP sold = ops sold", sold == counters.sold, "HTTP \(sold), ops \(counters.sold)")
        }
    }

    for (index, item) in run.seckillItems.enumerated() {
        let key = "\(item.event)/\(item.sku)"
        let sold = (after[key]?.sold ?? 0) - (before[key]?.sold ?? 0)
        let paid = run.observed.paidUnits[index, default: 0]
        let unknown = run.observed.paymentsUnanswered[Observed.PaidItem(index: index, isGroup: false), default: 0]
        check(
            "\(key): sold = paid orders seen", (paid...(paid + unknown)).contains(sold),
            "sold +\(sold), paid answers \(paid)" + (unknown > 0 ? ", unanswered payments \(unknown)" : ""))
    }
    for (index, item) in run.groupItems.enumerated() {
        let key = "\(item.event)/\(item.sku)"
        let size = item.groupSize ?? 1
        let sold = (after[key]?.sold ?? 0) - (before[key]?.sold ?? 0)
        let formed = run.observed.groupsFormed[index, default: 0]
        let unknown = run.observed.paymentsUnanswered[Observed.PaidItem(index: index, isGroup: true), default: 0]
        check(
            "\(key): sold = size × groups formed", ((formed * size)...((formed + unknown) * size)).contains(sold),
            "sold +\(sold), formed \(formed) × \(size)" + (unknown > 0 ? ", unanswered payments \(unknown)" : ""))
    }

    var claimedTotal = 0
    var claimsUnknown = 0
    for (index, batch) in config.coupons.enumerated() {
        let claimed = run.observed.couponsClaimed[index, default: 0]
        claimedTotal += claimed
        claimsUnknown += run.observed.claimsUnanswered[index, default: 0]
        check("coupon \(batch.id): claimed ≤ total", Int64(claimed) <= batch.total, "claimed \(claimed) (this run), total \(batch.total)")
    }
    if let after = statsAfter["coupons_claimed"], let before = statsBefore["coupons_claimed"] {
        let delta = after - before
        check(
            "coupons_claimed = claims seen", (claimedTotal...(claimedTotal + claimsUnknown)).contains(delta),
            "STATS +\(delta), 201 answers \(claimedTotal)")
        let total = config.coupons.reduce(0) { $0 + Int($1.total) }
        check("coupons_claimed ≤ Σ total", after <= total, "\(after) vs \(total)")
    }

    var oversized: [String] = []
    for group in run.observed.groupIDs {
        let (status, json) = try await http.get("/v1/groups/\(group)", authorization: bearer)
        guard status == 200, let size = json["size"]?.intValue, let members = json["members"]?.intValue else {
            oversized.append("\(group): status \(status)")
            continue
        }
        let paid = json["paid"]?.intValue ?? 0
        if members > size || paid > size { oversized.append("\(group): \(members) members, \(paid) paid, size \(size)") }
    }
    check(
        "no group over its size (\(run.observed.groupIDs.count) groups read)", oversized.isEmpty,
        oversized.prefix(5).joined(separator: "; "))
    check(
        "a retry with the same Idempotency-Key gets the first order", run.observed.retriesDifferent == 0,
        "\(run.observed.retriesSame) same, \(run.observed.retriesDifferent) different")
    return checks
}
