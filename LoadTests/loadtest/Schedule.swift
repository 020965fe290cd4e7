/// What an arrival does.
enum ArrivalKind: UInt8, Sendable {
    case order, groupOpen, groupJoin, coupon, bot
}

/// One planned arrival: its send time is fixed before the run starts (open loop).
struct Arrival: Sendable {
    /// Nanoseconds from the start of the run.
    var atNs: UInt64
    var kind: ArrivalKind
    /// Buyer index (0..<users), or bot index for `.bot`.
    var user: Int32
}

/// The open-loop send schedule of a scenario: Poisson arrivals following the arrival curve
/// (by thinning at the curve's highest rate), plus each bot's steady stream, in time order.
func buildSchedule(_ scenario: Scenario) -> [Arrival] {
    var random = SeededGenerator(seed: scenario.seed)
    var arrivals: [Arrival] = []
    let duration = scenario.durationSeconds
    let rateMax = scenario.arrivals.map(\.rate).max() ?? 0
    if rateMax > 0 {
        var t = 0.0
        while true {
            t += -log(1 - random.unit()) / rateMax
            if t >= duration { break }
            guard random.unit() * rateMax < scenario.rate(at: t) else { continue }
            let pick = random.unit()
            let mix = scenario.mix
            let kind: ArrivalKind =
                pick < mix.order
                ? .order
                : pick < mix.order + mix.groupOpen
                    ? .groupOpen
                    : pick < mix.order + mix.groupOpen + mix.groupJoin
                        ? .groupJoin
                        : .coupon
            let user = Int32(truncatingIfNeeded: Int(random.next() % UInt64(scenario.users)))
            arrivals.append(Arrival(atNs: UInt64(t * 1e9), kind: kind, user: user))
        }
    }
    if scenario.botIPs > 0, scenario.botRatePerIP > 0 {
        let gap = 1 / scenario.botRatePerIP
        for bot in 0..<scenario.botIPs {
            var t = gap * Double(bot) / Double(scenario.botIPs)
            while t < duration {
                arrivals.append(Arrival(atNs: UInt64(t * 1e9), kind: .bot, user: Int32(bot)))
                t += gap
            }
        }
    }
    arrivals.sort { $0.atNs < $1.atNs }
    return arrivals
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
