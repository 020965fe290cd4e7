import FlashSaleTestKit
import Logging
import Synchronization
import Testing

@testable import FlashSale

/// The lines a `JSONLogHandler` wrote.
final class LogLines: Sendable {
    private let lines = Mutex<[[UInt8]]>([])

    /// A logger whose handler writes here, stamping every line with `nowMs`.
    func logger(label: String = "flashsaled", level: Logger.Level = .debug, nowMs: Int64 = 1_796_619_189_042) -> Logger {
        var logger = Logger(label: label) { label in
            JSONLogHandler(label: label, sink: .lines { [self] line in lines.withLock { $0.append(line) } }, clock: { nowMs })
        }
        logger.logLevel = level
        return logger
    }

    /// Every line so far, newline included.
    var all: [[UInt8]] { lines.withLock { $0 } }

    /// Every line so far, parsed.
    func objects() throws -> [JSONValue] { try all.map { try JSONParser.parse(Array($0.dropLast())) } }
}

/// `--log-format json`: one parseable object a line, whatever the message and metadata hold.
@Suite struct JSONLogHandlerTests {

    @Test func aLineIsOneObjectWithTheFixedFieldsAndTheMetadata() throws {
        let lines = LogLines()
        var logger = lines.logger()
        logger[metadataKey: "journal"] = "/var/lib/flashsale"
        logger.info(
            "ops write \"RESTOCK\"\nsecond line",
            metadata: ["peer": "127.0.0.1:5000", "nested": ["a": "1", "list": ["x", "y"]], "count": Logger.MetadataValue.stringConvertible(42)])
        let written = lines.all
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.last == UInt8(ascii: "\n") && line.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") }, "one line")
        let object = try JSONParser.parse(Array(line.dropLast()))
        #expect(object["time"]?.stringValue == "2026-12-07T04:53:09.042Z")
        #expect(object["level"]?.stringValue == "info")
        #expect(object["logger"]?.stringValue == "flashsaled")
        #expect(object["message"]?.stringValue == "ops write \"RESTOCK\"\nsecond line")
        #expect(object["journal"]?.stringValue == "/var/lib/flashsale")
        #expect(object["peer"]?.stringValue == "127.0.0.1:5000")
        #expect(object["count"]?.stringValue == "42")
        #expect(object["nested"]?["a"]?.stringValue == "1")
        #expect(object["nested"]?["list"]?.arrayValue?.compactMap(\.stringValue) == ["x", "y"])
    }

    @Test func metadataCannotOverwriteTheFixedFields() throws {
        let lines = LogLines()
        lines.logger().warning("real", metadata: ["message": "forged", "level": "debug", "time": "0"])
        let object = try #require(try lines.objects().first)
        #expect(object["message"]?.stringValue == "real")
        #expect(object["level"]?.stringValue == "warning")
        #expect(object["time"]?.stringValue == "2026-12-07T04:53:09.042Z")
    }

    @Test func belowTheLevelNothingIsWritten() {
        let lines = LogLines()
        let logger = lines.logger(level: .info)
        logger.debug("request")
        #expect(lines.all.isEmpty)
    }

    @Test(arguments: [(Int64(0), "1970-01-01T00:00:00.000Z"), (1_999, "1970-01-01T00:00:01.999Z"), (-1, "1969-12-31T23:59:59.999Z")])
    func timestampsHaveMilliseconds(ms: Int64, text: String) {
        #expect(rfc3339Milliseconds(ms: ms) == text)
    }
}
