import Foundation
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP

private func parse(_ text: String) throws(JSONParseError) -> JSONValue {
    try JSONParser.parse(Array(text.utf8))
}

private func parseError(_ bytes: [UInt8]) -> JSONParseError? {
    do {
        _ = try JSONParser.parse(bytes)
        return nil
    } catch {
        return error
    }
}


struct JSONValidRow: Sendable, CustomTestStringConvertible {
    let text: String
    let expected: JSONValue
    var testDescription: String { text }
}

struct JSONInvalidRow: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let reason: JSONParseError.Reason
    init(_ name: String, _ text: String, _ reason: JSONParseError.Reason) {
        self.name = name
        self.bytes = Array(text.utf8)
        self.reason = reason
    }
    init(_ name: String, bytes: [UInt8], _ reason: JSONParseError.Reason) {
        self.name = name
        self.bytes = bytes
        self.reason = reason
    }
    var testDescription: String { name }
}

private let quote = UInt8(ascii: "\"")

@Suite struct JSONParserTests {
    static let validRows: [JSONValidRow] = [
        JSONValidRow(text: #"{"sku":"s1","qty":2}"#, expected: .object(["sku": .string("s1"), "qty": .int(2)])),
        JSONValidRow(text: " \t\r\n[1, -2, 3.5, 1e2, -0, 0, true, false, null] \n", expected: .array([
            .int(1), .int(-2), .double(3.5), .double(100), .int(0), .int(0), .bool(true), .bool(false), .null,
        ])),
        JSONValidRow(text: #""x""#, expected: .string("x")),
        JSONValidRow(text: "123", expected: .int(123)),
        JSONValidRow(text: "null", expected: .null),
        JSONValidRow(text: "{}", expected: .object([:])),
        JSONValidRow(text: "[ ]", expected: .array([])),
        JSONValidRow(text: #"{ "a" : { "b" : [ {} , [ ] ] } }"#, expected: .object(["a": .object(["b": .array([.object([:]), .array([])])])])),
        JSONValidRow(text: "9223372036854775807", expected: .int(.max)),
        JSONValidRow(text: "-9223372036854775808", expected: .int(.min)),
        JSONValidRow(text: "9223372036854775808", expected: .double(9.223372036854775808e18)),
        JSONValidRow(text: "-9223372036854775809", expected: .double(-9.223372036854775809e18)),
        JSONValidRow(text: "1E+2", expected: .double(100)),
        JSONValidRow(text: "1e-2", expected: .double(0.01)),
        JSONValidRow(text: "-0.5", expected: .double(-0.5)),
        JSONValidRow(text: "2.0", expected: .double(2)),
        JSONValidRow(text: "1e-400", expected: .double(0)),
        JSONValidRow(text: #""a\"b\\c\/d\b\f\n\r\t""#, expected: .string("a\"b\\c/d\u{8}\u{C}\n\r\t")),
        JSONValidRow(text: #""\u00e9\u00E9""#, expected: .string("éé")),
        JSONValidRow(text: #""\ud83d\ude00""#, expected: .string("😀")),
        JSONValidRow(text: #""\u0000""#, expected: .string("\u{0}")),
        JSONValidRow(text: #""\u20ac""#, expected: .string("€")),
        JSONValidRow(text: "\"é😀中\u{7F}\"", expected: .string("é😀中\u{7F}")),
        JSONValidRow(text: #""plain then \n escape then é""#, expected: .string("plain then \n escape then é")),
        JSONValidRow(text: #"{"":""}"#, expected: .object(["": .string("")])),
    ]

    @Test(arguments: validRows)
    func parsesValidDocument(_ row: JSONValidRow) throws {
        #expect(try parse(row.text) == row.expected)
    }

    static let invalidRows: [JSONInvalidRow] = [
        JSONInvalidRow("empty", "", .unexpectedEnd),
        JSONInvalidRow("only whitespace", "  \n ", .unexpectedEnd),
        JSONInvalidRow("trailing comma in array", "[1,]", .unexpectedByte),
        JSONInvalidRow("trailing comma in object", #"{"a":1,}"#, .unexpectedByte),
        JSONInvalidRow("leading comma", "[,1]", .unexpectedByte),
        JSONInvalidRow("missing comma", "[1 2]", .unexpectedByte),
        JSONInvalidRow("missing colon", #"{"a" 1}"#, .unexpectedByte),
        JSONInvalidRow("bare key", "{a:1}", .unexpectedByte),
        JSONInvalidRow("single quotes", "{'a':1}", .unexpectedByte),
        JSONInvalidRow("line comment", "// c\n1", .unexpectedByte),
        JSONInvalidRow("block comment", "[1 /* c */]", .unexpectedByte),
        JSONInvalidRow("leading zero", "01", .invalidNumber),
        JSONInvalidRow("negative leading zero", "-01", .invalidNumber),
        JSONInvalidRow("dot without digits", "1.", .invalidNumber),
        JSONInvalidRow("dot first", ".5", .unexpectedByte),
        JSONInvalidRow("exponent without digits", "1e", .invalidNumber),
        JSONInvalidRow("signed exponent without digits", "1e+", .invalidNumber),
        JSONInvalidRow("lone minus", "-", .unexpectedEnd),
        JSONInvalidRow("minus letter", "-a", .invalidNumber),
        JSONInvalidRow("plus sign", "+1", .unexpectedByte),
        JSONInvalidRow("NaN", "NaN", .unexpectedByte),
        JSONInvalidRow("Infinity", "-Infinity", .invalidNumber),
        JSONInvalidRow("hex number", "0x10", .trailingData),
        JSONInvalidRow("number too large", "1e400", .numberOutOfRange),
        JSONInvalidRow("truncated literal", "tru", .unexpectedEnd),
        JSONInvalidRow("misspelled literal", "trux", .unexpectedByte),
        JSONInvalidRow("capitalised literal", "True", .unexpectedByte),
        JSONInvalidRow("literal with suffix", "nullx", .trailingData),
        JSONInvalidRow("unterminated string", #""abc"#, .unexpectedEnd),
        JSONInvalidRow("raw control char", "\"a\u{1}\"", .controlCharacterInString),
        JSONInvalidRow("raw newline", "\"a\nb\"", .controlCharacterInString),
        JSONInvalidRow("raw tab after escape", "\"\\n\t\"", .controlCharacterInString),
        JSONInvalidRow("unknown escape", #""\x""#, .invalidEscape),
        JSONInvalidRow("escaped single quote", #""\'""#, .invalidEscape),
        JSONInvalidRow("short unicode escape", #""\u12""#, .invalidUnicodeEscape),
        JSONInvalidRow("non-hex unicode escape", #""\u12G4""#, .invalidUnicodeEscape),
        JSONInvalidRow("lone high surrogate", #""\ud800""#, .invalidUnicodeEscape),
        JSONInvalidRow("high surrogate then letter", #""\ud800\u0041""#, .invalidUnicodeEscape),
        JSONInvalidRow("high surrogate then text", #""\ud800abcdef""#, .invalidUnicodeEscape),
        JSONInvalidRow("lone low surrogate", #""\udc00""#, .invalidUnicodeEscape),
        JSONInvalidRow("invalid UTF-8 byte", bytes: [quote, 0xFF, quote], .invalidUTF8),
        JSONInvalidRow("continuation byte alone", bytes: [quote, 0x80, quote], .invalidUTF8),
        JSONInvalidRow("overlong slash", bytes: [quote, 0xC0, 0xAF, quote], .invalidUTF8),
        JSONInvalidRow("overlong three-byte", bytes: [quote, 0xE0, 0x80, 0xAF, quote], .invalidUTF8),
        JSONInvalidRow("encoded surrogate", bytes: [quote, 0xED, 0xA0, 0x80, quote], .invalidUTF8),
        JSONInvalidRow("past U+10FFFF", bytes: [quote, 0xF4, 0x90, 0x80, 0x80, quote], .invalidUTF8),
        JSONInvalidRow("F5 lead", bytes: [quote, 0xF5, 0x80, 0x80, 0x80, quote], .invalidUTF8),
        JSONInvalidRow("truncated sequence", bytes: [quote, 0xE2, 0x82, quote], .invalidUTF8),
        JSONInvalidRow("sequence cut by end", bytes: [quote, 0xE2, 0x82], .invalidUTF8),
        JSONInvalidRow("non-ASCII outside string", bytes: [0xC3, 0xA9], .unexpectedByte),
        JSONInvalidRow("byte-order mark", bytes: [0xEF, 0xBB, 0xBF, UInt8(ascii: "1")], .unexpectedByte),
        JSONInvalidRow("trailing garbage", #"{"a":1}x"#, .trailingData),
        JSONInvalidRow("two documents", "1 2", .trailingData),
        JSONInvalidRow("duplicate key", #"{"a":1,"a":2}"#, .duplicateKey),
        JSONInvalidRow("duplicate key after escape", #"{"a":1,"\u0061":2}"#, .duplicateKey),
        JSONInvalidRow("unclosed array", "[", .unexpectedEnd),
        JSONInvalidRow("unclosed object after colon", #"{"a":"#, .unexpectedEnd),
        JSONInvalidRow("unclosed object after key", #"{"a""#, .unexpectedEnd),
        JSONInvalidRow("unclosed object after value", #"{"a":1"#, .unexpectedEnd),
        JSONInvalidRow("close mismatch", "[1}", .unexpectedByte),
        JSONInvalidRow("non-string key", "{1:2}", .unexpectedByte),
        JSONInvalidRow("NUL byte outside string", bytes: [UInt8(ascii: "["), 0, UInt8(ascii: "]")], .unexpectedByte),
        JSONInvalidRow("form feed as whitespace", "\u{C}1", .unexpectedByte),
    ]

    @Test(arguments: invalidRows)
    func rejectsMalformedDocument(_ row: JSONInvalidRow) {
        #expect(parseError(row.bytes)?.reason == row.reason)
    }

    @Test func errorsCarryTheOffset() {
        #expect(parseError(Array("[1,]".utf8)) == JSONParseError(.unexpectedByte, offset: 3))
        #expect(parseError(Array(#"{"a":1,"a":2}"#.utf8)) == JSONParseError(.duplicateKey, offset: 7))
        #expect(parseError([quote, UInt8(ascii: "a"), 0xFF, quote]) == JSONParseError(.invalidUTF8, offset: 2))
    }

    @Test func depthLimitIs32() throws {
        for depth in [1, 31, 32] {
            let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            _ = try parse(text)
            let objects = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
            _ = try parse(objects)
        }
        let tooDeep = String(repeating: "[", count: 33) + String(repeating: "]", count: 33)
        #expect(parseError(Array(tooDeep.utf8)) == JSONParseError(.tooDeep, offset: 32))
        let tooDeepObjects = String(repeating: #"{"a":"#, count: 33) + "1" + String(repeating: "}", count: 33)
        #expect(parseError(Array(tooDeepObjects.utf8))?.reason == .tooDeep)
        // Far deeper input fails the same way, without recursing into it.
        #expect(parseError(Array(repeating: UInt8(ascii: "["), count: 100_000))?.reason == .tooDeep)
    }

    @Test func acceptsAnyByteCollection() throws {
        let text = #"{"k":[1,"v"]}"#
        let expected: JSONValue = .object(["k": .array([.int(1), .string("v")])])
        #expect(try JSONParser.parse(text.utf8) == expected)
        #expect(try JSONParser.parse(Array(text.utf8)[...]) == expected)
        #expect(try JSONParser.parse(text.utf8.lazy.map { $0 }) == expected)
        let fromRaw = try Array(text.utf8).withUnsafeBytes { raw in try JSONParser.parse(raw) }
        #expect(fromRaw == expected)
        // A slice parses only its own bytes.
        let padded = Array("xx[1]yy".utf8)
        #expect(try JSONParser.parse(padded[2..<5]) == .array([.int(1)]))
    }

    @Test func accessorsReadTypedMembers() throws {
        let value = try parse(#"{"s":"x","i":7,"d":1.5,"b":true,"n":null,"a":[1,2],"o":{"k":"v"}}"#)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["i"]?.intValue == 7)
        #expect(value["i"]?.doubleValue == 7)
        #expect(value["d"]?.intValue == nil)
        #expect(value["d"]?.doubleValue == 1.5)
        #expect(value["b"]?.boolValue == true)
        #expect(value["n"]?.isNull == true)
        #expect(value["a"]?[1]?.intValue == 2)
        #expect(value["a"]?[2] == nil)
        #expect(value["a"]?.arrayValue?.count == 2)
        #expect(value["o"]?["k"]?.stringValue == "v")
        #expect(value["o"]?.objectValue?.count == 1)
        #expect(value["missing"] == nil)
        #expect(value["s"]?.intValue == nil)
        #expect(value["i"]?.stringValue == nil)
        #expect(value[0] == nil)
        #expect(JSONValue.string("x")["k"] == nil)
    }

    /// Every document Foundation accepts from a random mix must parse to the same values here.
    @Test func agreesWithFoundationOnGeneratedDocuments() throws {
        var rng = SplitMix64(state: 0x15_0A)
        for _ in 0..<200 {
            let value = randomValue(depth: 0, using: &rng)
            var writer = JSONWriter()
            writer.element(value)
            let parsed = try JSONParser.parse(writer.bytes)
            #expect(parsed == value)
            let foundation = try JSONSerialization.jsonObject(with: Data(writer.bytes), options: [.fragmentsAllowed])
            #expect(sameAsFoundation(parsed, foundation))
        }
    }
}

private func randomString(using rng: inout SplitMix64) -> String {
    var scalars = String.UnicodeScalarView()
    for _ in 0..<Int.random(in: 0...12, using: &rng) {
        let pick = Int.random(in: 0..<10, using: &rng)
        let value: UInt32
        switch pick {
        case 0: value = UInt32.random(in: 0...0x1F, using: &rng)
        case 1: value = [0x22, 0x5C, 0x2F, 0x7F].randomElement(using: &rng)!
        case 2: value = UInt32.random(in: 0x80...0x7FF, using: &rng)
        case 3: value = UInt32.random(in: 0x800...0xD7FF, using: &rng)
        case 4: value = UInt32.random(in: 0x10000...0x10FFFF, using: &rng)
        default: value = UInt32.random(in: 0x20...0x7E, using: &rng)
        }
        scalars.append(Unicode.Scalar(value)!)
    }
    return String(scalars)
}

private func randomValue(depth: Int, using rng: inout SplitMix64) -> JSONValue {
    let pick = Int.random(in: 0..<(depth < 4 ? 8 : 6), using: &rng)
    switch pick {
    case 0: return .null
    case 1: return .bool(Bool.random(using: &rng))
    case 2: return .int(Int64.random(in: .min ... .max, using: &rng))
    case 3: return .double(Double.random(in: -1e6...1e6, using: &rng))
    case 4, 5: return .string(randomString(using: &rng))
    case 6: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in randomValue(depth: depth + 1, using: &rng) })
    default:
        var members: [String: JSONValue] = [:]
        for _ in 0..<Int.random(in: 0...4, using: &rng) {
            members[randomString(using: &rng)] = randomValue(depth: depth + 1, using: &rng)
        }
        return .object(members)
    }
}

private func sameAsFoundation(_ value: JSONValue, _ other: Any) -> Bool {
    switch value {
    case .null: return other is NSNull
    case .bool(let flag): return (other as? Bool) == flag
    case .int(let number): return (other as? NSNumber)?.int64Value == number
    case .double(let number):
        // Foundation on Linux gives NSDecimalNumber, whose `doubleValue` can be an ulp off;
        // its decimal text is exact.
        return (other as? NSNumber).flatMap { Double($0.stringValue) } == number
    case .string(let text): return (other as? String) == text
    case .array(let elements):
        guard let array = other as? [Any], array.count == elements.count else { return false }
        return zip(elements, array).allSatisfy { sameAsFoundation($0, $1) }
    case .object(let members):
        guard let object = other as? [String: Any], object.count == members.count else { return false }
        return members.allSatisfy { key, member in object[key].map { sameAsFoundation(member, $0) } ?? false }
    }
}

@Suite struct JSONWriterTests {
    @Test func writesObjectsWithCommasAndNesting() {
        let body = JSONWriter.object { json in
            json.field("order", "o123")
            json.field("qty", 2)
            json.field("late", true)
            json.field("amount", Int64(-1999))
            json.nullField("coupon")
            json.object("group") { json in
                json.field("size", 3)
            }
            json.array("items") { json in
                json.element("a")
                json.element(1)
                json.element(false)
                json.object { json in json.field("k", "v") }
                json.array { _ in }
            }
            json.object("empty") { _ in }
        }
        let expected = #"{"order":"o123","qty":2,"late":true,"amount":-1999,"coupon":null,"group":{"size":3},"items":["a",1,false,{"k":"v"},[]],"empty":{}}"#
        #expect(String(decoding: body, as: UTF8.self) == expected)
    }

    @Test func escapesStringsPerRFC8259() {
        var json = JSONWriter()
        json.element("q\"b\\s/\n\r\t\u{8}\u{C}\u{0}\u{1F}\u{7F}é😀")
        #expect(json.string == #""q\"b\\s/\n\r\t\b\f\u0000\u001f"# + "\u{7F}é😀\"")
        var keys = JSONWriter()
        keys.object { json in json.field("a\"b", "c") }
        #expect(keys.string == #"{"a\"b":"c"}"#)
    }

    @Test func escapesEveryControlCharacter() throws {
        for code in 0..<0x20 {
            let text = String(Unicode.Scalar(UInt8(code)))
            var json = JSONWriter()
            json.element(text)
            #expect(!json.bytes.dropFirst().dropLast().contains { $0 < 0x20 }, "U+\(code)")
            #expect(try JSONParser.parse(json.bytes) == .string(text), "U+\(code)")
        }
    }

    @Test func writesNumbers() {
        var json = JSONWriter()
        json.array { json in
            json.element(Int64.min)
            json.element(Int64.max)
            json.element(0)
            json.element(-7)
            json.element(0.1)
            json.element(1e-5)
            json.element(1e300)
            json.element(Double.nan)
            json.element(-Double.infinity)
        }
        #expect(json.string == "[-9223372036854775808,9223372036854775807,0,-7,0.1,1e-05,1e+300,null,null]")
    }

    static let roundTripStrings = [
        "", "plain", "quote\"", "back\\slash", "slash/", "new\nline", "\r\t\u{8}\u{C}", "\u{0}", "\u{1F}",
        "\u{7F}", "é", "中文", "😀", "mixed \"é\" \\ 😀\n", String(repeating: "long ", count: 500),
    ]

    @Test(arguments: roundTripStrings)
    func stringsRoundTripThroughParser(_ text: String) throws {
        var json = JSONWriter()
        json.object { json in
            json.field(text, text)
            json.field("k", Substring(text))
        }
        #expect(try JSONParser.parse(json.bytes) == .object([text: .string(text), "k": .string(text)]))
    }

    @Test func randomStringsRoundTrip() throws {
        var rng = SplitMix64(state: 0x57)
        for _ in 0..<2000 {
            let text = randomString(using: &rng)
            var json = JSONWriter()
            json.element(text)
            #expect(try JSONParser.parse(json.bytes) == .string(text))
            let foundation = try JSONSerialization.jsonObject(with: Data(json.bytes), options: [.fragmentsAllowed])
            #expect(foundation as? String == text)
        }
    }

    @Test func writesParsedValuesBack() throws {
        let value = try parse(#"{"a":[1,2.5,"x",null,true,{"b":{}}],"c":-3}"#)
        var json = JSONWriter()
        json.object { json in json.field("v", value) }
        #expect(try JSONParser.parse(json.bytes)["v"] == value)
    }
}
