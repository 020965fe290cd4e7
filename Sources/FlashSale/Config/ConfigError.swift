/// Why a config was refused: the source, the key and the problem, for a person to fix.
///
/// `description` is `"<source>: <key>: <problem>"`, for example
/// `config/flashsale.yaml: events[1].items[0].stock: must be >= 0 (got -5)`.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    /// The config file's path, `"<built-in demo>"`, or `"environment"` for a bad `FLASHSALE_*` value.
    public var source: String
    /// The full key path (`rate_limit.per_ip.burst`, `events[0].items[1].sku`), the environment
    /// variable, or empty when the problem is the file as a whole (unreadable, not YAML).
    public var key: String
    /// What is wrong, with the offending value where it helps.
    public var problem: String

    /// Creates an error.
    public init(source: String, key: String, problem: String) {
        self.source = source
        self.key = key
        self.problem = problem
    }

    /// `"<source>: <key>: <problem>"`, or `"<source>: <problem>"` when there is no key.
    public var description: String {
        key.isEmpty ? "\(source): \(problem)" : "\(source): \(key): \(problem)"
    }
}
