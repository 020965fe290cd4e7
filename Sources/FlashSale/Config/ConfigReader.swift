import Yams

/// What every lookup into a config needs: where it came from, the environment that overrides
/// it, and the load time that `now` means.
struct ConfigContext {
    /// The file path or `"<built-in demo>"`: the source named in errors.
    let source: String
    /// The process environment, for `FLASHSALE_*` overrides.
    let environment: [String: String]
    /// The load time, unix epoch milliseconds: what `now` in a time means.
    let nowMs: Int64

    /// The source named in errors about an environment variable.
    static let environmentSource = "environment"

    /// An error about `key` in the file.
    func error(_ key: String, _ problem: String) -> ConfigError {
        ConfigError(source: source, key: key, problem: problem)
    }

    /// The environment variable that overrides `path`: `rate_limit.per_ip.rate` is
    /// `FLASHSALE_RATE_LIMIT_PER_IP_RATE`.
    static func environmentName(path: String) -> String {
        SaleConfig.environmentPrefix + String(path.uppercased().map { $0 == "." ? "_" : $0 })
    }

    /// The value of `path`'s environment override, as a scalar whose errors name the variable.
    func environmentScalar(path: String) -> ConfigScalar? {
        let name = Self.environmentName(path: path)
        guard let value = environment[name] else { return nil }
        return ConfigScalar(text: value, isQuoted: false, source: Self.environmentSource, key: name)
    }

    /// The root mapping of a parsed document; an empty document is an empty mapping.
    func root(_ node: Node?, keys: [String]) throws(ConfigError) -> ConfigMapping {
        try ConfigMapping(node: node, path: "", keys: keys, overridable: true, context: self)
    }
}

/// One mapping of the config: its keys checked against the ones it may have, its values handed
/// out with their full key paths (and, outside lists, their environment overrides).
struct ConfigMapping {
    /// The key path of the mapping itself: `""` at the top, `rate_limit.per_ip`, `events[2]`.
    let path: String
    /// Whether `FLASHSALE_*` variables override values here: only outside lists, whose elements have no names.
    let overridable: Bool
    /// The source, environment and load time shared by the whole config.
    let context: ConfigContext
    private let values: [String: Node]

    /// Reads `node` as a mapping whose keys must be among `keys`; nil or null is an empty mapping.
    init(node: Node?, path: String, keys: [String], overridable: Bool, context: ConfigContext) throws(ConfigError) {
        self.path = path
        self.overridable = overridable
        self.context = context
        var values: [String: Node] = [:]
        switch node {
        case nil:
            break
        case .scalar(let scalar)? where ConfigScalar.isNull(scalar):
            break
        case .mapping(let mapping)?:
            for (keyNode, value) in mapping {
                guard case .scalar(let keyScalar) = keyNode else {
                    throw context.error(path, "keys must be plain names, not lists or mappings")
                }
                let key = keyScalar.string
                guard keys.contains(key) else {
                    throw context.error(Self.join(path, key), Self.unknownKeyProblem(key, known: keys))
                }
                values[key] = value
            }
        case let node?:
            let place = path.isEmpty ? " at the top level" : ""
            throw context.error(path, "expected a mapping of keys\(place), got \(ConfigScalar.describe(node))")
        }
        self.values = values
    }

    /// The full path of `key` in this mapping.
    func keyPath(_ key: String) -> String { Self.join(path, key) }

    /// An error about `key` in this mapping.
    func error(_ key: String, _ problem: String) -> ConfigError {
        context.error(keyPath(key), problem)
    }

    /// Whether `key` is set to something other than null, in the file or the environment.
    func has(_ key: String) -> Bool {
        if overridable, context.environmentScalar(path: keyPath(key)) != nil { return true }
        guard let node = values[key] else { return false }
        if case .scalar(let scalar) = node, ConfigScalar.isNull(scalar) { return false }
        return true
    }

    /// The scalar at `key`, the environment's first; nil when absent or null.
    func scalar(_ key: String) throws(ConfigError) -> ConfigScalar? {
        if overridable, let override = context.environmentScalar(path: keyPath(key)) { return override }
        switch values[key] {
        case nil:
            return nil
        case .scalar(let scalar)?:
            if ConfigScalar.isNull(scalar) { return nil }
            return ConfigScalar(
                text: scalar.string, isQuoted: scalar.style != .plain, source: context.source, key: keyPath(key))
        case let node?:
            throw error(key, "expected a single value, got \(ConfigScalar.describe(node))")
        }
    }

    /// The scalar at `key`; an error naming it when absent.
    func required(_ key: String) throws(ConfigError) -> ConfigScalar {
        guard let value = try scalar(key) else { throw error(key, "required key is missing") }
        return value
    }

    /// The mapping at `key`, checked against `keys`; empty when absent.
    func mapping(_ key: String, keys: [String]) throws(ConfigError) -> ConfigMapping {
        try ConfigMapping(node: values[key], path: keyPath(key), keys: keys, overridable: overridable, context: context)
    }

    /// Whether `key` holds a list.
    func isList(_ key: String) -> Bool {
        if case .sequence? = values[key] { return true }
        return false
    }

    /// The list at `key`; nil when absent or null.
    func list(_ key: String) throws(ConfigError) -> [Node]? {
        switch values[key] {
        case nil:
            return nil
        case .scalar(let scalar)? where ConfigScalar.isNull(scalar):
            return nil
        case .sequence(let sequence)?:
            return Array(sequence)
        case let node?:
            throw error(key, "expected a list, got \(ConfigScalar.describe(node))")
        }
    }

    /// A scalar element of a list, at `path` (`events[0].schedule.days[1]`).
    func element(_ node: Node, path: String) throws(ConfigError) -> ConfigScalar {
        guard case .scalar(let scalar) = node, !ConfigScalar.isNull(scalar) else {
            throw context.error(path, "expected a single value, got \(ConfigScalar.describe(node))")
        }
        return ConfigScalar(text: scalar.string, isQuoted: scalar.style != .plain, source: context.source, key: path)
    }

    private static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    /// "unknown key", with the nearest known key when it looks like a typo of one.
    private static func unknownKeyProblem(_ key: String, known: [String]) -> String {
        let nearest = known.map { (key: $0, distance: editDistance($0, key)) }.min { $0.distance < $1.distance }
        if let nearest, nearest.distance <= (key.count <= 4 ? 1 : 2) {
            return "unknown key (did you mean '\(nearest.key)'?)"
        }
        return "unknown key (known keys here: \(known.joined(separator: ", ")))"
    }

    /// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`: the optimal string
    /// alignment distance, so `brust` is one edit from `burst`. Keys are short.
    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var table = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}

/// One value of the config, from the file or an environment variable, with the key its errors name.
///
/// Numbers and booleans are read from the text as written, not as YAML 1.1 would resolve it,
/// so `0x10`, `1_000` or `yes` are not numbers or booleans here; a quoted value is a string.
struct ConfigScalar {
    /// The text as written (without quotes).
    let text: String
    /// Whether it was quoted in the YAML: then it is a string, never a number or a boolean.
    let isQuoted: Bool
    /// The source named in errors: the file, or `"environment"`.
    let source: String
    /// The key path or environment variable named in errors.
    let key: String

    /// An error about this value.
    func error(_ problem: String) -> ConfigError {
        ConfigError(source: source, key: key, problem: problem)
    }

    /// The text quoted for an error message.
    var quoted: String { "\"\(text)\"" }

    /// A non-empty string of at most `bytesMax` UTF-8 bytes.
    func string(bytesMax: Int) throws(ConfigError) -> String {
        guard !text.isEmpty else { throw error("must not be empty") }
        guard text.utf8.count <= bytesMax else { throw error("must be at most \(bytesMax) bytes long") }
        return text
    }

    /// An id: `[A-Za-z0-9._-]{1,64}` (§1).
    func id() throws(ConfigError) -> String {
        guard ConfigScalar.isID(text) else { throw error("must match [A-Za-z0-9._-]{1,64} (got \(quoted))") }
        return text
    }

    /// A decimal integer in `range`.
    func integer(_ range: ClosedRange<Int64>) throws(ConfigError) -> Int64 {
        guard !isQuoted else { throw error("expected an integer, got a quoted string (\(quoted))") }
        guard ConfigScalar.isDecimalInteger(text), let value = Int64(text) else {
            throw error("expected an integer (got \(quoted))")
        }
        guard value >= range.lowerBound else { throw error("must be >= \(range.lowerBound) (got \(value))") }
        guard value <= range.upperBound else { throw error("must be <= \(range.upperBound) (got \(value))") }
        return value
    }

    /// A decimal integer in `range`, as an `Int`.
    func integer(_ range: ClosedRange<Int>) throws(ConfigError) -> Int {
        Int(try integer(Int64(range.lowerBound)...Int64(range.upperBound)))
    }

    /// A decimal number greater than 0 and at most `max`: `20`, `0.5`, `2.5e1`.
    func positiveNumber(max: Double) throws(ConfigError) -> Double {
        guard !isQuoted else { throw error("expected a number, got a quoted string (\(quoted))") }
        guard ConfigScalar.isDecimalNumber(text), let value = Double(text), value.isFinite else {
            throw error("expected a number (got \(quoted))")
        }
        guard value > 0 else { throw error("must be > 0 (got \(text))") }
        guard value <= max else { throw error("must be <= \(max) (got \(text))") }
        return value
    }

    /// `true` or `false`, any case.
    func boolean() throws(ConfigError) -> Bool {
        guard !isQuoted else { throw error("expected true or false, got a quoted string (\(quoted))") }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw error("expected true or false (got \(quoted))")
        }
    }

    /// A duration (`15m`, `1h30m`, `500ms`) of at least `minMs` and at most `maxMs` milliseconds.
    func duration(minMs: Int64 = 1, maxMs: Int64 = ConfigLimits.durationMsMax) throws(ConfigError) -> Int64 {
        guard let value = Duration.parseMilliseconds(text) else {
            throw error("expected a duration like 15m, 2s, 500ms or 1h30m (got \(quoted))")
        }
        guard value >= minMs else {
            let least = minMs == 1 ? "> 0" : "at least \(Duration.configText(milliseconds: minMs))"
            throw error("must be \(least) (got \(text))")
        }
        guard value <= maxMs else {
            throw error("must be at most \(Duration.configText(milliseconds: maxMs)) (got \(text))")
        }
        return value
    }

    /// A time: RFC 3339 (`2026-11-25T12:00:00Z`, offsets allowed), or `now`, `now+2h`, `now-10m`
    /// relative to `nowMs`, for demos.
    func time(nowMs: Int64) throws(ConfigError) -> Int64 {
        let bad = error("expected an RFC 3339 time like 2026-11-25T12:00:00Z, or now, now+2h, now-10m (got \(quoted))")
        let compact = text.filter { $0 != " " }
        if compact.hasPrefix("now") {
            let rest = compact.dropFirst(3)
            guard let sign = rest.first else { return nowMs }
            guard sign == "+" || sign == "-", let offset = Duration.parseMilliseconds(rest.dropFirst()),
                offset <= ConfigLimits.durationMsMax
            else { throw bad }
            return sign == "+" ? nowMs + offset : nowMs - offset
        }
        guard let value = RFC3339.milliseconds(text) else { throw bad }
        return value
    }

    /// `host:port`, IPv6 hosts in brackets.
    func hostPort() throws(ConfigError) -> HostPort {
        guard let value = HostPort(text) else {
            throw error("expected \(HostPort.syntaxHint) (got \(quoted))")
        }
        return value
    }

    /// One of `names`, any case, made into a value by `make` (an enum's `init(rawValue:)`).
    func choice<Choice>(_ names: [String], _ make: (String) -> Choice?) throws(ConfigError) -> Choice {
        let lowered = text.lowercased()
        if names.contains(lowered), let value = make(lowered) { return value }
        let expected = names.count == 2 ? "\(names[0]) or \(names[1])" : "one of \(names.joined(separator: ", "))"
        throw error("expected \(expected) (got \(quoted))")
    }

    /// Whether a plain scalar is YAML's null: empty, `~` or `null`.
    static func isNull(_ scalar: Node.Scalar) -> Bool {
        scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// What a node is, for "expected …, got …" errors.
    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let scalar): return "\"\(scalar.string)\""
        case .alias: return "an alias"
        }
    }

    /// `[A-Za-z0-9._-]{1,64}`.
    static func isID(_ text: String) -> Bool {
        text.utf8.count <= ConfigLimits.idBytesMax && isContractIdentifier(text)
    }

    /// An optional sign and decimal digits only.
    private static func isDecimalInteger(_ text: String) -> Bool {
        let digits = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
        return !digits.isEmpty && digits.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    /// Digits with an optional fraction and exponent: no `inf`, `nan` or hex floats.
    private static func isDecimalNumber(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"),
                    UInt8(ascii: "+"), UInt8(ascii: "-"):
                    return true
                default:
                    return false
                }
            }
    }
}
