// `--log-format json`: one JSON object a line on standard error, for log shippers (Loki,
// Elasticsearch, journald with a JSON parser). Every line has `time` (RFC 3339, UTC, with
// milliseconds),
// `level`, `logger`, `message` and the metadata as fields; a metadata value is a string, or an
// object or array of them when the caller gave a dictionary or a list.

#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// How the daemon writes its log.
public enum LogFormat: String, Sendable, CaseIterable {
    /// swift-log's text lines.
    case text
    /// One JSON object a line.
    case json
}

/// A swift-log handler writing one JSON object a line.
public struct JSONLogHandler: LogHandler {
    /// Where lines go: standard error, or (for tests) a closure given each line, newline included.
    public enum Sink: Sendable {
        case standardError
        case lines(@Sendable ([UInt8]) -> Void)
    }

    /// Serialises whole lines from every thread.
    private static let lock = Mutex<Void>(())

    private let label: String
    private let sink: Sink
    private let clock: @Sendable () -> Int64
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    /// A handler for the logger `label`, writing to `sink`, stamping lines with `clock` (ms since the epoch).
    public init(label: String, sink: Sink = .standardError, clock: @escaping @Sendable () -> Int64 = JSONLogHandler.wallClockMs) {
        self.label = label
        self.sink = sink
        self.clock = clock
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let given = event.metadata { fields.merge(given) { _, new in new } }
        var json = JSONWriter(capacity: 256)
        json.object { json in
            json.field("time", rfc3339Milliseconds(ms: clock()))
            json.field("level", event.level.rawValue)
            json.field("logger", label)
            json.field("message", event.message.description)
            json.field("source", event.source)
            for key in fields.keys.sorted() where !Self.reserved.contains(key) {
                Self.write(fields[key]!, as: key, into: &json)
            }
        }
        var line = json.bytes
        line.append(UInt8(ascii: "\n"))
        switch sink {
        case .standardError:
            // One write(2) per line (atomic on a pipe up to PIPE_BUF), serialised for longer ones.
            Self.lock.withLock { _ in
                line.withUnsafeBytes { bytes in
                    var offset = 0
                    while offset < bytes.count {
                        let written = Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                        if written <= 0 { break }
                        offset += written
                    }
                }
            }
        case .lines(let write):
            write(line)
        }
    }

    /// The keys every line has; metadata under these names is not repeated.
    static let reserved: Set<String> = ["time", "level", "logger", "message", "source"]

    private static func write(_ value: Logger.Metadata.Value, as key: String, into json: inout JSONWriter) {
        switch value {
        case .string(let text): json.field(key, text)
        case .stringConvertible(let value): json.field(key, value.description)
        case .dictionary(let dictionary): json.object(key) { json in
                for name in dictionary.keys.sorted() { write(dictionary[name]!, as: name, into: &json) }
            }
        case .array(let values): json.array(key) { json in
                for value in values { element(value, into: &json) }
            }
        }
    }

    private static func element(_ value: Logger.Metadata.Value, into json: inout JSONWriter) {
        switch value {
        case .string(let text): json.element(text)
        case .stringConvertible(let value): json.element(value.description)
        case .dictionary(let dictionary): json.object { json in
                for name in dictionary.keys.sorted() { write(dictionary[name]!, as: name, into: &json) }
            }
        case .array(let values): json.array { json in
                for value in values { element(value, into: &json) }
            }
        }
    }

    /// Now, ms since the epoch.
    public static let wallClockMs: @Sendable () -> Int64 = {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
    }
}
