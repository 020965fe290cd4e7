/// The duration syntax of the config: `15m`, `2s`, `500ms`, `1h30m`, `24h`, `7d`.
extension Duration {
    /// Parses a config duration: one or more `<digits><unit>` with units `d`, `h`, `m`, `s`, `ms`.
    ///
    /// Nil for a bare number (`900`: seconds or milliseconds would be a guess), a negative or
    /// fractional value, units out of order (`30m1h`) or a sum past `Int64` milliseconds.
    public init?(parsing text: some StringProtocol) {
        guard let milliseconds = Self.parseMilliseconds(text) else { return nil }
        self = .milliseconds(milliseconds)
    }

    /// The units, largest first, with their length in milliseconds.
    private static let configUnits: [(name: String, milliseconds: Int64)] = [
        ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1),
    ]

    /// Most digits in one part: 12 digits of days still fit `Int64` milliseconds.
    private static let configDigitsMax = 12

    /// Milliseconds of a config duration (see `init?(parsing:)`); nil when `text` is not one.
    static func parseMilliseconds(_ text: some StringProtocol) -> Int64? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        var index = 0
        var total: Int64 = 0
        var lastUnit = -1
        while index < bytes.count {
            var value: Int64 = 0
            let digitsStart = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                index += 1
                if index - digitsStart > configDigitsMax { return nil }
            }
            guard index > digitsStart else { return nil }
            let unitStart = index
            while index < bytes.count, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[index]) {
                index += 1
            }
            let unitName = String(decoding: bytes[unitStart..<index], as: UTF8.self)
            // Each unit at most once and largest first, so `1m30m` or `30m1h` is flagged as a typo.
            guard let unit = configUnits.firstIndex(where: { $0.name == unitName }), unit > lastUnit else {
                return nil
            }
            lastUnit = unit
            let (part, overflow) = value.multipliedReportingOverflow(by: configUnits[unit].milliseconds)
            guard !overflow else { return nil }
            let (sum, sumOverflow) = total.addingReportingOverflow(part)
            guard !sumOverflow else { return nil }
            total = sum
        }
        return total
    }

    /// `milliseconds` in the config syntax, shortest form: `5400000` is `1h30m`, `0` is `0s`.
    static func configText(milliseconds: Int64) -> String {
        guard milliseconds > 0 else { return milliseconds == 0 ? "0s" : "-" + configText(milliseconds: -milliseconds) }
        var rest = milliseconds
        var text = ""
        for unit in configUnits where rest >= unit.milliseconds {
            text += "\(rest / unit.milliseconds)\(unit.name)"
            rest %= unit.milliseconds
        }
        return text
    }
}
