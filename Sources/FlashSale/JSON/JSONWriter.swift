/// Builds a JSON document into a byte buffer, for HTTP response bodies.
///
/// Containers are written by closures, so they always close and commas are always right:
///
/// ```swift
/// let body = JSONWriter.object { json in
///     json.field("order", "o1a2")
///     json.field("qty", 2)
///     json.field("late", true)
///     json.object("group") { json in json.field("size", 3) }
///     json.array("events") { json in json.element("e1") }
/// }
/// ```
///
/// Strings are escaped per RFC 8259: `"` and `\` with a backslash, control characters as
/// `\n`, `\t`, ... or `\u00XX`; all other text, non-ASCII included, is copied as UTF-8.
/// Non-finite doubles, which JSON cannot hold, are written as `null`.
public struct JSONWriter: Sendable {
    /// The document written so far.
    public private(set) var bytes: [UInt8]
    /// Whether the next value in the current container needs a comma before it.
    private var needsComma = false

    /// Creates an empty writer with room for `capacity` bytes.
    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// The bytes of the object that `body` fills.
    public static func object(capacity: Int = 256, _ body: (inout JSONWriter) -> Void) -> [UInt8] {
        var writer = JSONWriter(capacity: capacity)
        writer.object(body)
        return writer.bytes
    }

    /// The document as a `String` (for logs and tests).
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    // MARK: Containers

    /// Writes an object value (at the top level or as an array element) filled by `body`.
    public mutating func object(_ body: (inout JSONWriter) -> Void) {
        beginValue()
        writeContainer(open: UInt8(ascii: "{"), close: UInt8(ascii: "}"), body)
    }

    /// Writes an array value (at the top level or as an array element) filled by `body`.
    public mutating func array(_ body: (inout JSONWriter) -> Void) {
        beginValue()
        writeContainer(open: UInt8(ascii: "["), close: UInt8(ascii: "]"), body)
    }

    /// Writes the member `key` holding an object filled by `body`.
    public mutating func object(_ key: String, _ body: (inout JSONWriter) -> Void) {
        writeKey(key)
        writeContainer(open: UInt8(ascii: "{"), close: UInt8(ascii: "}"), body)
    }

    /// Writes the member `key` holding an array filled by `body`.
    public mutating func array(_ key: String, _ body: (inout JSONWriter) -> Void) {
        writeKey(key)
        writeContainer(open: UInt8(ascii: "["), close: UInt8(ascii: "]"), body)
    }

    // MARK: Object members

    /// Writes the member `key` with a string value.
    public mutating func field(_ key: String, _ value: some StringProtocol) {
        writeKey(key)
        writeString(value)
    }

    /// Writes the member `key` with an integer value.
    public mutating func field(_ key: String, _ value: Int) {
        writeKey(key)
        writeInteger(Int64(value))
    }

    /// Writes the member `key` with an integer value.
    public mutating func field(_ key: String, _ value: Int64) {
        writeKey(key)
        writeInteger(value)
    }

    /// Writes the member `key` with a number value (`null` if not finite).
    public mutating func field(_ key: String, _ value: Double) {
        writeKey(key)
        writeDouble(value)
    }

    /// Writes the member `key` with `true` or `false`.
    public mutating func field(_ key: String, _ value: Bool) {
        writeKey(key)
        writeBool(value)
    }

    /// Writes the member `key` with any parsed or built value.
    public mutating func field(_ key: String, _ value: JSONValue) {
        writeKey(key)
        writeValue(value)
    }

    /// Writes the member `key` with `null`.
    public mutating func nullField(_ key: String) {
        writeKey(key)
        appendStatic("null")
    }

    // MARK: Array elements and top-level values

    /// Writes a string element.
    public mutating func element(_ value: some StringProtocol) {
        beginValue()
        writeString(value)
    }

    /// Writes an integer element.
    public mutating func element(_ value: Int) {
        beginValue()
        writeInteger(Int64(value))
    }

    /// Writes an integer element.
    public mutating func element(_ value: Int64) {
        beginValue()
        writeInteger(value)
    }

    /// Writes a number element (`null` if not finite).
    public mutating func element(_ value: Double) {
        beginValue()
        writeDouble(value)
    }

    /// Writes a `true` or `false` element.
    public mutating func element(_ value: Bool) {
        beginValue()
        writeBool(value)
    }

    /// Writes any parsed or built value as an element.
    public mutating func element(_ value: JSONValue) {
        beginValue()
        writeValue(value)
    }

    /// Writes the member `key` holding the time `ms` as RFC 3339 UTC with whole seconds
    /// (`"2026-11-25T12:00:00Z"`, as `rfc3339(ms:)` gives it), digit by digit: no string, no
    /// `gmtime` (the change feed writes two per order on the journal's thread).
    public mutating func timeField(_ key: String, ms: Int64) {
        writeKey(key)
        let (daysSinceEpoch, secondOfDay) = ms >= 0
            ? ((ms / 1000) / 86_400, (ms / 1000) % 86_400)
            : { () -> (Int64, Int64) in
                let seconds = (ms - 999) / 1000
                let days = (seconds - 86_399) / 86_400
                return (days, seconds - days * 86_400)
            }()
        let (year, month, day) = RFC3339.civilFromDays(daysSinceEpoch)
        guard (0...9999).contains(year) else {
            writeValue(.string(rfc3339(ms: ms)))
            return
        }
        func two(_ value: Int64) {
            bytes.append(UInt8(ascii: "0") + UInt8(value / 10))
            bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
        }
        bytes.append(UInt8(ascii: "\""))
        two(year / 100)
        two(year % 100)
        bytes.append(UInt8(ascii: "-"))
        two(month)
        bytes.append(UInt8(ascii: "-"))
        two(day)
        bytes.append(UInt8(ascii: "T"))
        two(secondOfDay / 3600)
        bytes.append(UInt8(ascii: ":"))
        two(secondOfDay % 3600 / 60)
        bytes.append(UInt8(ascii: ":"))
        two(secondOfDay % 60)
        bytes.append(UInt8(ascii: "Z"))
        bytes.append(UInt8(ascii: "\""))
    }

    /// Writes the member `key` holding `json`, a complete JSON value this writer (or another
    /// `JSONWriter`) produced; it is copied as is, not checked.
    public mutating func rawField(_ key: String, json: [UInt8]) {
        writeKey(key)
        bytes.append(contentsOf: json)
    }

    /// Writes `json`, a complete JSON value a `JSONWriter` produced, as an array element.
    public mutating func rawElement(json: [UInt8]) {
        beginValue()
        bytes.append(contentsOf: json)
    }

    // MARK: Encoding

    private mutating func beginValue() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
    }

    private mutating func writeKey(_ key: String) {
        beginValue()
        writeString(key)
        bytes.append(UInt8(ascii: ":"))
    }

    private mutating func writeContainer(open: UInt8, close: UInt8, _ body: (inout JSONWriter) -> Void) {
        bytes.append(open)
        needsComma = false
        body(&self)
        bytes.append(close)
        needsComma = true
    }

    private mutating func writeValue(_ value: JSONValue) {
        switch value {
        case .null: appendStatic("null")
        case .bool(let flag): writeBool(flag)
        case .int(let number): writeInteger(number)
        case .double(let number): writeDouble(number)
        case .string(let text): writeString(text)
        case .array(let elements):
            writeContainer(open: UInt8(ascii: "["), close: UInt8(ascii: "]")) { json in
                for element in elements { json.element(element) }
            }
        case .object(let members):
            writeContainer(open: UInt8(ascii: "{"), close: UInt8(ascii: "}")) { json in
                for (key, member) in members { json.field(key, member) }
            }
        }
    }

    private mutating func appendStatic(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private mutating func writeBool(_ value: Bool) {
        if value { appendStatic("true") } else { appendStatic("false") }
    }

    private mutating func writeInteger(_ value: Int64) {
        if value == 0 {
            bytes.append(UInt8(ascii: "0"))
            return
        }
        // Digits of the magnitude, least significant first; UInt64 holds |Int64.min|.
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude > 0 {
                buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            }
        }
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        withUnsafeBytes(of: &digits) { buffer in
            for position in stride(from: count - 1, through: 0, by: -1) {
                bytes.append(buffer[position])
            }
        }
    }

    private mutating func writeDouble(_ value: Double) {
        guard value.isFinite else {
            appendStatic("null")
            return
        }
        // Swift's shortest round-trip form ("1.5", "1e-05", "1e+20") is valid JSON.
        bytes.append(contentsOf: value.description.utf8)
    }

    private mutating func writeString(_ value: some StringProtocol) {
        bytes.append(UInt8(ascii: "\""))
        let done: Void? = value.utf8.withContiguousStorageIfAvailable { buffer in
            appendEscaped(buffer)
        }
        if done == nil {
            var copy = String(value)
            copy.withUTF8 { buffer in appendEscaped(buffer) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendEscaped(_ buffer: UnsafeBufferPointer<UInt8>) {
        // Copy runs of bytes that need no escape in one go.
        var runStart = 0
        for position in 0..<buffer.count {
            let byte = buffer[position]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            if runStart < position {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[runStart..<position]))
            }
            bytes.append(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "\n"): bytes.append(UInt8(ascii: "n"))
            case UInt8(ascii: "\r"): bytes.append(UInt8(ascii: "r"))
            case UInt8(ascii: "\t"): bytes.append(UInt8(ascii: "t"))
            case 0x08: bytes.append(UInt8(ascii: "b"))
            case 0x0C: bytes.append(UInt8(ascii: "f"))
            default:
                let hex: StaticString = "0123456789abcdef"
                bytes.append(UInt8(ascii: "u"))
                bytes.append(UInt8(ascii: "0"))
                bytes.append(UInt8(ascii: "0"))
                bytes.append(hex.utf8Start[Int(byte >> 4)])
                bytes.append(hex.utf8Start[Int(byte & 0x0F)])
            }
            runStart = position + 1
        }
        if runStart < buffer.count {
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[runStart..<buffer.count]))
        }
    }
}
