/// Why a document is not accepted by `JSONParser`, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of problem.
    public enum Reason: Sendable, Equatable {
        /// The input ended inside a value (or was empty).
        case unexpectedEnd
        /// A byte that cannot start or continue the value here (includes trailing commas,
        /// comments, single quotes, bare words and a byte-order mark).
        case unexpectedByte
        /// Something other than whitespace follows the top-level value.
        case trailingData
        /// A number that breaks the grammar (leading zero, lone `-`, `1.`, `1e`).
        case invalidNumber
        /// A number too large for a finite `Double`.
        case numberOutOfRange
        /// An unescaped byte below 0x20 inside a string.
        case controlCharacterInString
        /// A backslash followed by something other than `"\/bfnrtu`.
        case invalidEscape
        /// A `\u` escape without four hex digits, or a surrogate without its pair.
        case invalidUnicodeEscape
        /// A string holding bytes that are not well-formed UTF-8.
        case invalidUTF8
        /// Arrays and objects nested deeper than `JSONParser.depthMax`.
        case tooDeep
        /// An object naming the same key twice.
        case duplicateKey
    }

    /// The kind of problem.
    public let reason: Reason
    /// Byte offset into the input where the problem was found.
    public let offset: Int

    /// Creates an error.
    public init(_ reason: Reason, offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    /// `reason at byte offset`.
    public var description: String { "\(reason) at byte \(offset)" }
}

/// A strict RFC 8259 parser: one pass over the bytes, no Foundation.
///
/// Rejects what the RFC does not allow (trailing commas, comments, leading zeros, raw control
/// characters in strings, lone surrogates, ill-formed UTF-8) and, beyond the RFC, duplicate
/// keys and nesting deeper than `depthMax`. Callers bound the input size (the HTTP body limit).
public enum JSONParser {
    /// Deepest nesting of arrays and objects accepted; bounds recursion on hostile input.
    public static let depthMax = 32

    /// Parses one JSON document from `bytes` (whitespace around it is allowed).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var parser = Parser(bytes: bytes)
        return try parser.parseDocument()
    }

    /// Parses one JSON document from any collection of bytes (`[UInt8]`, a slice, `String.utf8`).
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        let contiguous = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try parse(UnsafeRawBufferPointer(buffer)) }
        }
        if let contiguous {
            return try contiguous.get()
        }
        return try Array(bytes).withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try parse(buffer) }
        }.get()
    }
}

private enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let lowerE = UInt8(ascii: "e")
    static let upperE = UInt8(ascii: "E")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
}

private struct Parser {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    /// Reused for strings that contain escapes.
    var scratch: [UInt8] = []

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw JSONParseError(.trailingData, offset: index) }
        return value
    }

    // MARK: Values

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case ASCII.space, ASCII.newline, ASCII.carriageReturn, ASCII.tab: index += 1
            default: return
            }
        }
    }

    /// Parses the value starting at the next non-whitespace byte; `depth` is the number of
    /// containers around it.
    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else { throw JSONParseError(.unexpectedEnd, offset: index) }
        switch bytes[index] {
        case ASCII.openBrace:
            guard depth < JSONParser.depthMax else { throw JSONParseError(.tooDeep, offset: index) }
            return try parseObject(depth: depth + 1)
        case ASCII.openBracket:
            guard depth < JSONParser.depthMax else { throw JSONParseError(.tooDeep, offset: index) }
            return try parseArray(depth: depth + 1)
        case ASCII.quote:
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case ASCII.minus, ASCII.zero...ASCII.nine:
            return try parseNumber()
        default:
            throw JSONParseError(.unexpectedByte, offset: index)
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        let start = literal.utf8Start
        for offset in 0..<count {
            guard index < bytes.count else { throw JSONParseError(.unexpectedEnd, offset: index) }
            guard bytes[index] == start[offset] else { throw JSONParseError(.unexpectedByte, offset: index) }
            index += 1
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1  // `{`
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == ASCII.closeBrace {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw JSONParseError(.unexpectedEnd, offset: index) }
            guard bytes[index] == ASCII.quote else { throw JSONParseError(.unexpectedByte, offset: index) }
            let keyOffset = index
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count else { throw JSONParseError(.unexpectedEnd, offset: index) }
            guard bytes[index] == ASCII.colon else { throw JSONParseError(.unexpectedByte, offset: index) }
            index += 1
            let value = try parseValue(depth: depth)
            if members.updateValue(value, forKey: key) != nil {
                throw JSONParseError(.duplicateKey, offset: keyOffset)
            }
            skipWhitespace()
            guard index < bytes.count else { throw JSONParseError(.unexpectedEnd, offset: index) }
            switch bytes[index] {
            case ASCII.comma:
                index += 1
            case ASCII.closeBrace:
                index += 1
                return .object(members)
            default:
                throw JSONParseError(.unexpectedByte, offset: index)
            }
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1  // `[`
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == ASCII.closeBracket {
            index += 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < bytes.count else { throw JSONParseError(.unexpectedEnd, offset: index) }
            switch bytes[index] {
            case ASCII.comma:
                index += 1
            case ASCII.closeBracket:
                index += 1
                return .array(elements)
            default:
                throw JSONParseError(.unexpectedByte, offset: index)
            }
        }
    }

    // MARK: Numbers

    mutating func skipDigits() -> Int {
        let start = index
        while index < bytes.count, bytes[index] >= ASCII.zero, bytes[index] <= ASCII.nine {
            index += 1
        }
        return index - start
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = index
        let negative = bytes[index] == ASCII.minus
        if negative { index += 1 }
        let integerStart = index
        let integerDigits = skipDigits()
        guard integerDigits > 0 else {
            throw JSONParseError(index < bytes.count ? .invalidNumber : .unexpectedEnd, offset: index)
        }
        if integerDigits > 1, bytes[integerStart] == ASCII.zero {
            throw JSONParseError(.invalidNumber, offset: integerStart)
        }
        var isInteger = true
        if index < bytes.count, bytes[index] == ASCII.dot {
            isInteger = false
            index += 1
            guard skipDigits() > 0 else { throw JSONParseError(.invalidNumber, offset: index) }
        }
        if index < bytes.count, bytes[index] == ASCII.lowerE || bytes[index] == ASCII.upperE {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == ASCII.plus || bytes[index] == ASCII.minus {
                index += 1
            }
            guard skipDigits() > 0 else { throw JSONParseError(.invalidNumber, offset: index) }
        }
        if isInteger, let value = integerValue(digitsFrom: integerStart, to: index, negative: negative) {
            return .int(value)
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw JSONParseError(.numberOutOfRange, offset: start)
        }
        return .double(value)
    }

    /// The digits as an `Int64`, or nil when they overflow it.
    func integerValue(digitsFrom start: Int, to end: Int, negative: Bool) -> Int64? {
        // Accumulate downwards so that Int64.min fits.
        var value: Int64 = 0
        for position in start..<end {
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (next, overflowB) = shifted.subtractingReportingOverflow(Int64(bytes[position] - ASCII.zero))
            if overflowA || overflowB { return nil }
            value = next
        }
        if negative { return value }
        return value == .min ? nil : -value
    }

    // MARK: Strings

    /// Parses a string starting at its opening quote; leaves `index` after the closing quote.
    mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        while true {
            guard index < bytes.count else { throw JSONParseError(.unexpectedEnd, offset: index) }
            let byte = bytes[index]
            if byte == ASCII.quote {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            } else if byte == ASCII.backslash {
                return try parseEscapedString(from: start)
            } else if byte < 0x20 {
                throw JSONParseError(.controlCharacterInString, offset: index)
            } else if byte < 0x80 {
                index += 1
            } else {
                try skipUTF8Sequence()
            }
        }
    }

    /// The slow path: the string from `start` has an escape at `index`.
    mutating func parseEscapedString(from start: Int) throws(JSONParseError) -> String {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while true {
            guard index < bytes.count else { throw JSONParseError(.unexpectedEnd, offset: index) }
            let byte = bytes[index]
            if byte == ASCII.quote {
                index += 1
                return String(decoding: scratch, as: UTF8.self)
            } else if byte == ASCII.backslash {
                try appendEscape()
            } else if byte < 0x20 {
                throw JSONParseError(.controlCharacterInString, offset: index)
            } else if byte < 0x80 {
                scratch.append(byte)
                index += 1
            } else {
                let sequenceStart = index
                try skipUTF8Sequence()
                scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[sequenceStart..<index]))
            }
        }
    }

    /// Decodes the escape at `index` (a backslash) into `scratch`.
    mutating func appendEscape() throws(JSONParseError) {
        let escapeOffset = index
        index += 1
        guard index < bytes.count else { throw JSONParseError(.unexpectedEnd, offset: index) }
        let code = bytes[index]
        index += 1
        switch code {
        case ASCII.quote: scratch.append(ASCII.quote)
        case ASCII.backslash: scratch.append(ASCII.backslash)
        case ASCII.slash: scratch.append(ASCII.slash)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(ASCII.newline)
        case UInt8(ascii: "r"): scratch.append(ASCII.carriageReturn)
        case UInt8(ascii: "t"): scratch.append(ASCII.tab)
        case UInt8(ascii: "u"):
            let first = try readHex4()
            var scalar: UInt32
            switch first {
            case 0xD800...0xDBFF:
                // A high surrogate must be followed by `\u` and a low surrogate.
                guard index + 1 < bytes.count, bytes[index] == ASCII.backslash,
                    bytes[index + 1] == UInt8(ascii: "u")
                else { throw JSONParseError(.invalidUnicodeEscape, offset: escapeOffset) }
                index += 2
                let second = try readHex4()
                guard (0xDC00...0xDFFF).contains(second) else {
                    throw JSONParseError(.invalidUnicodeEscape, offset: escapeOffset)
                }
                scalar = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            case 0xDC00...0xDFFF:
                throw JSONParseError(.invalidUnicodeEscape, offset: escapeOffset)
            default:
                scalar = first
            }
            appendUTF8(scalar)
        default:
            throw JSONParseError(.invalidEscape, offset: escapeOffset)
        }
    }

    mutating func readHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw JSONParseError(.invalidUnicodeEscape, offset: index) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case ASCII.zero...ASCII.nine: digit = byte - ASCII.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONParseError(.invalidUnicodeEscape, offset: index)
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// Checks the multi-byte UTF-8 sequence at `index` (Unicode table 3-7: no overlongs, no
    /// surrogates, nothing past U+10FFFF) and moves past it.
    mutating func skipUTF8Sequence() throws(JSONParseError) {
        let lead = bytes[index]
        let secondRange: ClosedRange<UInt8>
        let continuationCount: Int
        switch lead {
        case 0xC2...0xDF: secondRange = 0x80...0xBF; continuationCount = 1
        case 0xE0: secondRange = 0xA0...0xBF; continuationCount = 2
        case 0xE1...0xEC, 0xEE...0xEF: secondRange = 0x80...0xBF; continuationCount = 2
        case 0xED: secondRange = 0x80...0x9F; continuationCount = 2
        case 0xF0: secondRange = 0x90...0xBF; continuationCount = 3
        case 0xF1...0xF3: secondRange = 0x80...0xBF; continuationCount = 3
        case 0xF4: secondRange = 0x80...0x8F; continuationCount = 3
        default: throw JSONParseError(.invalidUTF8, offset: index)
        }
        guard index + continuationCount < bytes.count, secondRange.contains(bytes[index + 1]) else {
            throw JSONParseError(.invalidUTF8, offset: index)
        }
        var position = index + 2
        while position <= index + continuationCount {
            guard bytes[position] & 0xC0 == 0x80 else { throw JSONParseError(.invalidUTF8, offset: index) }
            position += 1
        }
        index = position
    }
}
