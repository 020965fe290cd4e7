import FlashSale
import Foundation
import Yams

/// A load scenario (`LoadTests/scenarios/*.yaml`): the `load` section says who arrives when and
/// does what; the `server` section is the flashsaled config the scenario is written for (written
/// to a file and served with `--spawn`; a running daemon must have been started with it).
struct Scenario: Sendable {
    /// One point of the arrival curve: `rate` arrivals per second at `atSeconds` from the start;
    /// the rate is linear between points.
    struct RatePoint: Sendable {
        var atSeconds: Double
        var rate: Double
    }

    /// Shares of the buyer arrivals (they sum to 1 after normalising).
    struct Mix: Sendable {
        var order: Double
        var groupOpen: Double
        var groupJoin: Double
        var coupon: Double
    }

    var seed: UInt64
    var users: Int
    var sourceIPs: Int
    var arrivals: [RatePoint]
    var mix: Mix
    /// Share of created orders (seckill and group) that get a signed payment notification.
    var payShare: Double
    /// Share of created seckill orders sent again with the same `Idempotency-Key`.
    var retryShare: Double
    /// Bot source addresses, each sending seckill orders at `botRatePerIP` for the whole run.
    var botIPs: Int
    var botRatePerIP: Double
    /// Most client connections open at once (file descriptors: keep under `ulimit -n`).
    var connectionsMax: Int
    /// Seconds to wait after the last arrival for answers still in flight.
    var drainSeconds: Double
    /// The flashsaled config, as YAML text.
    var serverYAML: String

    /// Seconds from the first to the last point of the arrival curve.
    var durationSeconds: Double { arrivals.last?.atSeconds ?? 0 }

    /// The arrival rate at `seconds` from the start.
    func rate(at seconds: Double) -> Double {
        guard let first = arrivals.first else { return 0 }
        if seconds <= first.atSeconds { return first.rate }
        for (a, b) in zip(arrivals, arrivals.dropFirst()) where seconds <= b.atSeconds {
            let span = b.atSeconds - a.atSeconds
            return span <= 0 ? b.rate : a.rate + (b.rate - a.rate) * (seconds - a.atSeconds) / span
        }
        return arrivals.last!.rate
    }

    /// Rates multiplied by `rateScale`, times by `timeScale`.
    func scaled(rateScale: Double, timeScale: Double) -> Scenario {
        var copy = self
        copy.arrivals = arrivals.map { RatePoint(atSeconds: $0.atSeconds * timeScale, rate: $0.rate * rateScale) }
        copy.botRatePerIP *= rateScale
        return copy
    }

    /// The server config parsed as flashsaled would parse it (`now` is `nowMs`).
    func serverConfig(nowMs: Int64) throws -> SaleConfig {
        do {
            return try SaleConfig.parse(yaml: serverYAML, sourceName: "<scenario server>", environment: [:], nowMs: nowMs)
        } catch {
            throw ScenarioError("the scenario's server section: \(error)")
        }
    }

    /// Reads a scenario file.
    static func load(path: String) throws -> Scenario {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard let root = try Yams.compose(yaml: text) else { throw ScenarioError("\(path): empty file") }
        guard let load = root["load"] else { throw ScenarioError("\(path): no `load` section") }
        guard let server = root["server"] else { throw ScenarioError("\(path): no `server` section") }
        func number(_ key: String, _ fallback: Double) throws -> Double {
            guard let node = load[key] else { return fallback }
            guard let value = node.float else { throw ScenarioError("\(path): load.\(key) is not a number") }
            return value
        }
        var points: [RatePoint] = []
        for point in load["arrivals"]?.sequence ?? [] {
            guard let at = point["at"]?.float, let rate = point["rate"]?.float, at >= 0, rate >= 0 else {
                throw ScenarioError("\(path): every load.arrivals entry needs `at` and `rate` (numbers ≥ 0)")
            }
            if let last = points.last, at < last.atSeconds {
                throw ScenarioError("\(path): load.arrivals must be in time order")
            }
            points.append(RatePoint(atSeconds: at, rate: rate))
        }
        guard points.count >= 2 else { throw ScenarioError("\(path): load.arrivals needs at least two points") }
        let mixNode = load["mix"]
        var mix = Mix(
            order: mixNode?["order"]?.float ?? 1, groupOpen: mixNode?["group_open"]?.float ?? 0,
            groupJoin: mixNode?["group_join"]?.float ?? 0, coupon: mixNode?["coupon"]?.float ?? 0)
        let sum = mix.order + mix.groupOpen + mix.groupJoin + mix.coupon
        guard sum > 0 else { throw ScenarioError("\(path): load.mix sums to 0") }
        mix = Mix(order: mix.order / sum, groupOpen: mix.groupOpen / sum, groupJoin: mix.groupJoin / sum, coupon: mix.coupon / sum)
        let scenario = Scenario(
            seed: UInt64(try number("seed", 1)),
            users: Int(try number("users", 10_000)),
            sourceIPs: Int(try number("source_ips", 250)),
            arrivals: points, mix: mix,
            payShare: try number("pay_share", 0.7),
            retryShare: try number("retry_share", 0.05),
            botIPs: Int(load["bots"]?["ips"]?.float ?? 0),
            botRatePerIP: load["bots"]?["rate"]?.float ?? 0,
            connectionsMax: Int(try number("connections_max", 1000)),
            drainSeconds: try number("drain_seconds", 5),
            serverYAML: try Yams.serialize(node: server))
        guard scenario.users >= 1, (1...Scenario.sourceIPsMax).contains(scenario.sourceIPs),
            (0...Scenario.botIPsMax).contains(scenario.botIPs), scenario.connectionsMax >= 1
        else {
            throw ScenarioError("\(path): users ≥ 1, source_ips 1...\(sourceIPsMax), bots.ips 0...\(botIPsMax), connections_max ≥ 1")
        }
        return scenario
    }

    /// Buyer source addresses: 127.1.0.1 ... (254 per /24), so at most this many.
    static let sourceIPsMax = 254 * 250
    /// Bot source addresses: 127.66.0.1 ...
    static let botIPsMax = 254
}

/// A scenario file that cannot be used.
struct ScenarioError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The loopback address of buyer source `index` (127.1.0.1, 127.1.0.2, ...) or bot `index`.
func sourceAddress(index: Int, bot: Bool) -> String {
    bot ? "127.66.0.\(index + 1)" : "127.1.\(index / 254).\(index % 254 + 1)"
}

/// SplitMix64: a small seeded generator, so a scenario replays the same arrivals.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
