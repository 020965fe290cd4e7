@_spi(Fuzzing) import FlashSale
@_spi(Fuzzing) import FlashSaleOps
import FuzzSupport
import NIOCore
import NIOEmbedded

/// The ops command table and every handler, line by line, against a real engine on the demo
/// configuration (no journal): names, arity, `AUTH` before writes, argument parsing, and what
/// each command does to the stock. The input's lines are run in order as one connection would
/// (an `AUTH` with the secret authenticates the lines after it). The engine lives across
/// inputs, so `RESTOCK`s add up. (`fuzz-ops-session` drives the same through the connection
/// handler; this target trades that for speed.)
///
/// Checks: no crash, every reply one status line (`OK`/`ERR`) or a list ending in `END`,
/// and every ledger's counters consistent after every input that authenticated (only those
/// can change stock).
enum OpsCommandFuzz {
    static let opsSecret = "fuzz-ops-password"

    static let (engine, runner): (SaleEngine, OpsCommandRunner) = {
        let (engine, hub) = makeDemoEngine(opsSecret: opsSecret, label: "fuzz-ops-command")
        return (engine, OpsCommandRunner(engine: engine, watchHub: hub, opsSecret: opsSecret, channel: NIOAsyncTestingChannel()))
    }()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpsCommand(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var buffer = ByteBuffer(bytes: fuzzInput(data, size))
    var decoder = OpsLineDecoder()
    var lines: [String] = []
    while let frame = decoder.next(&buffer) {
        if case .line(let line) = frame { lines.append(line) }
    }
    guard !lines.isEmpty else { return 0 }
    let replies = blocking { [lines] in
        var authenticated = false
        var replies: [String] = []
        for line in lines {
            let (reply, authenticates) = await OpsCommandFuzz.runner.answer(line, authenticated: authenticated)
            authenticated = authenticated || authenticates
            replies.append(reply)
        }
        // Only an authenticated connection can change stock.
        if authenticated {
            for shard in OpsCommandFuzz.engine.inventory.shards {
                for (key, c) in await shard.allCounters() {
                    precondition(
                        c.total == c.available + c.reserved + c.sold && c.available >= 0 && c.reserved >= 0 && c.sold >= 0,
                        "\(key): counters broken: \(c)")
                }
            }
        }
        return replies
    }
    for reply in replies where !reply.isEmpty {
        let replyLines = reply.split(separator: "\n", omittingEmptySubsequences: false)
        precondition(replyLines.last == "", "reply without a line end: \(reply.prefix(200))")
        let first = replyLines[0]
        if first == "OK" && replyLines.count > 2 {
            precondition(replyLines[replyLines.count - 2] == "END", "list without END: \(reply.prefix(200))")
        } else {
            precondition(replyLines.count == 2 && (first.hasPrefix("OK") || first.hasPrefix("ERR ")), "malformed reply: \(reply.prefix(200))")
        }
    }
    return 0
}

@_cdecl("fuzz_ops_command_main")
public func fuzzopscommandMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    _ = OpsCommandFuzz.engine
    return runLibFuzzer(argc, argv, fuzzOpsCommand)
}
