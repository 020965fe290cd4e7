/// One pass over a small, flat JSON object of plain members, without building a tree: the hot
/// path's order bodies and token payloads (`{"sku":"P1","qty":1}`).
///
/// It accepts a strict subset of JSON and nothing else: an object whose values are strings of
/// printable ASCII without escapes, integers (no fraction or exponent, at most 18 digits) or
/// `null`, with JSON whitespace anywhere JSON allows it. Anything outside that subset (escapes,
/// other bytes, nesting, `true`, a fraction, trailing bytes...) makes `scan` return false, and
/// the caller parses the same bytes with `JSONParser`, which decides. So what this accepts, the
/// full parser accepts with the same meaning; callers fall back on a repeated or unknown key too,
/// since the full parser refuses duplicates.
enum FlatJSONScanner {
    /// A member's value.
    enum Value {
        /// A string's bytes (printable ASCII, no escapes).
        case string(UnsafeRawBufferPointer)
        case int(Int64)
        case null
    }

    /// Calls `member` with each key's bytes and value, in order; false if the bytes are not a
    /// flat object of plain members or `member` returned false (the caller falls back).
    static func scan(_ bytes: UnsafeRawBufferPointer, _ member: (UnsafeRawBufferPointer, Value) -> Bool) -> Bool {
        var index = 0
        let count = bytes.count
        func skipWhitespace() {
            while index < count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }
        /// A plain string starting at `index` (its opening quote); nil if not plain.
        func string() -> UnsafeRawBufferPointer? {
            guard index < count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            let start = index + 1
            var end = start
            while end < count {
                let byte = bytes[end]
                if byte == UInt8(ascii: "\"") {
                    index = end + 1
                    return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                }
                guard byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "\\") else { return nil }
                end += 1
            }
            return nil
        }
        skipWhitespace()
        guard index < count, bytes[index] == UInt8(ascii: "{") else { return false }
        index += 1
        skipWhitespace()
        if index < count, bytes[index] == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                skipWhitespace()
                guard let key = string() else { return false }
                skipWhitespace()
                guard index < count, bytes[index] == UInt8(ascii: ":") else { return false }
                index += 1
                skipWhitespace()
                guard index < count else { return false }
                let value: Value
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard let text = string() else { return false }
                    value = .string(text)
                case UInt8(ascii: "n"):
                    guard count - index >= 4, bytes[index + 1] == UInt8(ascii: "u"), bytes[index + 2] == UInt8(ascii: "l"),
                        bytes[index + 3] == UInt8(ascii: "l")
                    else { return false }
                    index += 4
                    value = .null
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    let negative = bytes[index] == UInt8(ascii: "-")
                    if negative { index += 1 }
                    let digitsStart = index
                    var magnitude: Int64 = 0
                    while index < count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                        // 18 digits always fit an Int64; a longer number is the full parser's.
                        guard index - digitsStart < 18 else { return false }
                        magnitude = magnitude * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                        index += 1
                    }
                    let digits = index - digitsStart
                    // JSON: at least one digit, no leading zero; a fraction or exponent is not plain.
                    guard digits >= 1, !(digits > 1 && bytes[digitsStart] == UInt8(ascii: "0")) else { return false }
                    if index < count, bytes[index] == UInt8(ascii: ".") || bytes[index] | 0x20 == UInt8(ascii: "e") { return false }
                    value = .int(negative ? -magnitude : magnitude)
                default:
                    return false
                }
                guard member(key, value) else { return false }
                skipWhitespace()
                guard index < count else { return false }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "}") else { return false }
                index += 1
                break
            }
        }
        skipWhitespace()
        return index == count
    }

    /// Whether `key` is `name` (ASCII).
    static func isKey(_ key: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        key.count == name.utf8CodeUnitCount
            && key.elementsEqual(UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }
}
