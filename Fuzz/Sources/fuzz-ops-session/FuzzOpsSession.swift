@_spi(Fuzzing) import FlashSale
@_spi(Fuzzing) import FlashSaleOps
import FuzzSupport
import Logging
import NIOCore
import NIOEmbedded

/// The whole ops session, bytes to replies: the line decoder, the command table (names,
/// arity, `AUTH`) and every handler, as `OpsServer` installs them on a connection, against a
/// real engine on the demo configuration (no journal). Each input is one connection: its bytes
/// arrive in two reads split at a fuzzer-chosen point, then the client half-closes. The engine
/// lives across inputs, as it does across connections, so `RESTOCK`s add up.
///
/// Checks: no crash, no hang (the connection answers and closes within 10 s), every reply
/// starts with `OK` or `ERR` and ends in a line end, and the stock invariants hold.
enum OpsSessionFuzz {
    static let opsSecret = "fuzz-ops-password"

    static let (engine, watchHub) = makeDemoEngine(opsSecret: opsSecret, label: "fuzz-ops-session")

    static let logger: Logger = {
        var logger = Logger(label: "fuzz-ops-session")
        logger.logLevel = .critical
        return logger
    }()

    /// One connection's replies to `bytes`.
    static func session(_ bytes: [UInt8]) async -> String {
        let channel = NIOAsyncTestingChannel()
        try! await channel.testingEventLoop.executeInContext {
            try OpsServer.addConnectionHandlers(to: channel, engine: engine, watchHub: watchHub, opsSecret: opsSecret, logger: logger)
        }
        try! await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7070)).get()
        let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
        for part in [bytes[..<split], bytes[split...]] where !part.isEmpty {
            _ = try? await channel.writeInbound(ByteBuffer(bytes: part))
        }
        try! await channel.testingEventLoop.executeInContext {
            channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        // Answers come from tasks; the handler closes once every line is answered, unless a
        // WATCH runs (only its client ends it): then stop once nothing came for a moment.
        var replies: [UInt8] = []
        var quietSince = ContinuousClock.now
        while channel.isActive {
            let before = replies.count
            while let buffer = try? await channel.readOutbound(as: ByteBuffer.self) { replies += buffer.readableBytesView }
            if replies.count != before { quietSince = .now }
            let quiet = ContinuousClock.now - quietSince
            if watchHub.subscriptionCount > 0 && quiet > .milliseconds(2) { break }
            precondition(quiet < .seconds(10), "ops session silent and open for 10 s")
            await Task.yield()
        }
        while let buffer = try? await channel.readOutbound(as: ByteBuffer.self) { replies += buffer.readableBytesView }
        _ = try? await channel.close()
        return String(decoding: replies, as: UTF8.self)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpsSession(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(fuzzInput(data, size))
    let text = blocking { await OpsSessionFuzz.session(bytes) }
    // Every line a reply or push can be: a status line, a list's items and its end, a push.
    let shapes = ["OK", "ERR ", "END", "event ", "item ", "stat ", "stock "]
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
        precondition(shapes.contains { line.hasPrefix($0) }, "malformed reply line: \(line.prefix(200))")
    }
    precondition(text.isEmpty || text.hasSuffix("\n"), "reply without a line end")
    blocking { await OpsSessionFuzz.engine.inventory.verifyInvariants() }
    return 0
}

@_cdecl("fuzz_ops_session_main")
public func fuzzopssessionMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runLibFuzzer(argc, argv, fuzzOpsSession)
}
