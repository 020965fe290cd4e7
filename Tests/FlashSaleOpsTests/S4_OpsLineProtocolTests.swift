import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import FlashSale
@testable import FlashSaleOps
@testable import InventoryActor

/// The ops protocol's pure parts: the line decoder, the command table, replies, and the
/// `WATCH` coalescing on a virtual-time event loop.
@Suite struct OpsLineDecoderTests {
    /// Feeds `bytes` to a fresh decoder `chunk` bytes at a time; every frame it yields.
    static func frames(_ bytes: [UInt8], chunk: Int, limit: Int = OpsLimits.opsLineBytesMax) -> [OpsFrame] {
        var decoder = OpsLineDecoder(lineBytesMax: limit)
        var buffer = ByteBuffer()
        var out: [OpsFrame] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            while let frame = decoder.next(&buffer) { out.append(frame) }
            buffer.discardReadBytes()
        }
        return out
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
    static let line4096 = String(repeating: "a", count: 4096)
    static let line4097 = String(repeating: "a", count: 4097)

    @Test func oneByteAtATimeYieldsTheSameLinesAsOneWrite() {
        let input = Self.bytes("PING\r\nSTOCK A1 e1\nEVENTS\nSTOCK 手机\n")
        let expected: [OpsFrame] = [.line("PING"), .line("STOCK A1 e1"), .line("EVENTS"), .line("STOCK 手机")]
        #expect(Self.frames(input, chunk: 1) == expected)
        #expect(Self.frames(input, chunk: input.count) == expected)
        #expect(Self.frames(input, chunk: 7) == expected)
    }

    @Test(arguments: ["\n", "\r\n"])
    func lineOfExactly4096BytesIsALine(terminator: String) {
        let input = Self.bytes(Self.line4096 + terminator + "PING\n")
        #expect(Self.frames(input, chunk: 1) == [.line(Self.line4096), .line("PING")])
        #expect(Self.frames(input, chunk: 4096) == [.line(Self.line4096), .line("PING")])
    }

    @Test(arguments: ["\n", "\r\n", ""])
    func lineOf4097BytesIsTooLongOnceAndTheRestIsDiscarded(terminator: String) {
        let input = Self.bytes(Self.line4097 + terminator + "PING\n")
        #expect(Self.frames(input, chunk: 1) == [.tooLong])
        #expect(Self.frames(input, chunk: input.count) == [.tooLong])
    }

    @Test func unterminated4097BytesAreTooLongOnceTheNextByteIsNotALineEnd() {
        var decoder = OpsLineDecoder()
        var buffer = ByteBuffer(string: Self.line4096 + "\r")
        #expect(decoder.next(&buffer) == nil, "4096 bytes and a \\r may still be a line")
        buffer.writeString("x")
        #expect(decoder.next(&buffer) == .tooLong)
    }

    @Test func crlfAndLfBothEndLinesAndEmptyLinesAreLines() {
        #expect(Self.frames(Self.bytes("a\r\n\r\nb\n\n"), chunk: 1) == [.line("a"), .line(""), .line("b"), .line("")])
    }

    @Test func nulByteAndInvalidUTF8AreMalformedAndLaterLinesStillDecode() {
        let input: [UInt8] = Self.bytes("PI") + [0] + Self.bytes("NG\n") + [0xff, 0xfe, 0x41, 0x0a] + [0xe6, 0x89] + Self.bytes("\nPING\n")
        let frames = Self.frames(input, chunk: 1)
        #expect(frames.count == 4)
        #expect(frames[0] == .malformed("NUL byte in line"))
        #expect(frames[1] == .malformed("line is not valid UTF-8"))
        #expect(frames[2] == .malformed("line is not valid UTF-8"), "a truncated multi-byte sequence")
        #expect(frames[3] == .line("PING"))
    }
}

@Suite struct OpsCommandTableTests {
    static func outcome(_ line: String, authenticated: Bool = false) -> String {
        switch OpsCommands.table.dispatch(line, authenticated: authenticated) {
        case .reply(let reply): return reply.text
        case .run(let command, let arguments): return "run \(command.name) \(arguments)"
        }
    }

    @Test func commandWordsAreCaseInsensitiveAndArgumentsKeepTheirCase() {
        #expect(Self.outcome("ping") == "run PING []")
        #expect(Self.outcome("Stock a1  E1") == #"run STOCK ["a1", "E1"]"#)
    }

    @Test func unknownCommandIsRejectedBeforeAnyHandler() {
        #expect(Self.outcome("SELL A1").hasPrefix("ERR unknown_command "))
    }

    @Test(arguments: ["STOCK", "STOCK A1 e1 x", "PING x", "EVENT", "RESTOCK A1 e1", "WATCH", "QUIT now"])
    func wrongArgumentCountIsBadArguments(line: String) {
        #expect(Self.outcome(line, authenticated: true).hasPrefix("ERR bad_arguments "), "\(line)")
    }

    @Test(arguments: ["RESTOCK A1 e1 5", "PAUSE e1", "RESUME e1", "CHECKPOINT"])
    func writeCommandsNeedAuth(line: String) {
        #expect(Self.outcome(line).hasPrefix("ERR auth_required "), "\(line)")
        #expect(Self.outcome(line, authenticated: true).hasPrefix("run "), "\(line)")
    }

    @Test func emptyLineGetsNoAnswer() {
        #expect(Self.outcome("") == "")
        #expect(Self.outcome("   ") == "")
    }

    @Test func repliesAreBuiltInOnePlaceAndStayOnOneLine() {
        #expect(OpsReply.ok("PONG").text == "OK PONG\n")
        #expect(OpsReply.ok().text == "OK\n")
        #expect(OpsReply.list(["a=1", "b=2"]).text == "OK\na=1\nb=2\nEND\n")
        #expect(OpsReply.list([]).text == "OK\nEND\n")
        #expect(OpsReply.error(code: "bad_request", text: "x\r\nOK forged").text == "ERR bad_request x  OK forged\n")
    }

    @Test func opsSecretComparisonMatchesOnlyTheExactSecret() {
        #expect(OpsCommands.isOpsSecret("s3cret", secret: "s3cret"))
        #expect(!OpsCommands.isOpsSecret("s3cre", secret: "s3cret"))
        #expect(!OpsCommands.isOpsSecret("s3cret ", secret: "s3cret"))
        #expect(!OpsCommands.isOpsSecret("", secret: ""), "an empty secret never authenticates")
    }
}

/// Collects pushed lines (used on one thread, the embedded loop's).
final class PushedLines: @unchecked Sendable {
    var lines: [String] = []
}

@Suite struct WatchCoalescingTests {
    static let nowMs: Int64 = 1_795_000_000_000

    static func counters(_ available: Int64, _ reserved: Int64, sold: Int64 = 0) -> StockCounters {
        StockCounters(total: available + reserved + sold, available: available, reserved: reserved, sold: sold)
    }

    static func subscription(event: String?, loop: EmbeddedEventLoop, pushed: PushedLines, events: [EventConfig]) -> WatchSubscription {
        let catalog = EventCatalog(events: events)
        return WatchSubscription(
            sku: "A1", event: event, catalog: catalog, clock: ManualClock(startMs: nowMs), eventLoop: loop,
            deliver: { pushed.lines.append($0) })
    }

    /// One live seckill event `e1` selling `A1`.
    static var liveEvents: [EventConfig] {
        let item = ItemConfig(sku: "A1", name: "Phone case", priceFen: 990, stock: 10, limitPerUser: 2, groupSize: nil, groupPriceFen: nil)
        return [EventConfig(id: "e1", kind: .seckill, startsAtMs: nowMs - 60_000, endsAtMs: nowMs + 3_600_000, items: [item])]
    }

    @Test func watchSendsAtMostOneLinePerIntervalAndTheLastStateAlwaysArrives() {
        let loop = EmbeddedEventLoop()
        let pushed = PushedLines()
        let watch = Self.subscription(event: "e1", loop: loop, pushed: pushed, events: Self.liveEvents)
        watch.seed(event: "e1", Self.counters(10, 0))
        watch.start()
        #expect(pushed.lines == ["stock sku=A1 available=10 reserved=0 sold=0"], "the current state at once")
        for held in 1...5 { watch.changed(event: "e1", Self.counters(10 - Int64(held), Int64(held))) }
        loop.run()
        #expect(pushed.lines.count == 1, "changes inside the interval wait")
        loop.advanceTime(by: .milliseconds(OpsLimits.watchIntervalMs - 1))
        #expect(pushed.lines.count == 1)
        loop.advanceTime(by: .milliseconds(1))
        #expect(pushed.lines.last == "stock sku=A1 available=5 reserved=5 sold=0", "coalesced to the latest state")
        #expect(pushed.lines.count == 2)
        // Long after the last line, a change goes out on the next loop turn.
        loop.advanceTime(by: .seconds(5))
        watch.changed(event: "e1", Self.counters(4, 5, sold: 1))
        loop.run()
        #expect(pushed.lines.last == "stock sku=A1 available=4 reserved=5 sold=1")
        // Another event's change is not this watch's business; after cancel nothing is sent.
        watch.changed(event: "e2", Self.counters(0, 0))
        watch.cancel()
        watch.changed(event: "e1", Self.counters(0, 9, sold: 1))
        loop.advanceTime(by: .seconds(5))
        #expect(pushed.lines.count == 3)
    }

    @Test func watchWithoutEventSumsTheLiveEventsOnly() {
        let loop = EmbeddedEventLoop()
        let pushed = PushedLines()
        let item = ItemConfig(sku: "A1", name: "x", priceFen: 1, stock: 5, limitPerUser: 1, groupSize: nil, groupPriceFen: nil)
        let ended = EventConfig(id: "old", kind: .seckill, startsAtMs: Self.nowMs - 7_200_000, endsAtMs: Self.nowMs - 3_600_000, items: [item])
        let second = EventConfig(id: "e2", kind: .seckill, startsAtMs: Self.nowMs - 1, endsAtMs: Self.nowMs + 1_000, items: [item])
        let watch = Self.subscription(event: nil, loop: loop, pushed: pushed, events: Self.liveEvents + [ended, second])
        watch.seed(event: "e1", Self.counters(10, 0))
        watch.seed(event: "e2", Self.counters(5, 0))
        watch.seed(event: "old", Self.counters(0, 0, sold: 5))
        watch.start()
        #expect(pushed.lines == ["stock sku=A1 available=15 reserved=0 sold=0"])
        watch.changed(event: "e2", Self.counters(4, 1))
        loop.advanceTime(by: .seconds(1))
        #expect(pushed.lines.last == "stock sku=A1 available=14 reserved=1 sold=0")
    }

    @Test func aChangeBeforeTheSeedReadWinsOverTheSeed() {
        let loop = EmbeddedEventLoop()
        let pushed = PushedLines()
        let watch = Self.subscription(event: "e1", loop: loop, pushed: pushed, events: Self.liveEvents)
        watch.changed(event: "e1", Self.counters(9, 1))
        watch.seed(event: "e1", Self.counters(10, 0))
        watch.start()
        #expect(pushed.lines == ["stock sku=A1 available=9 reserved=1 sold=0"])
    }
}
