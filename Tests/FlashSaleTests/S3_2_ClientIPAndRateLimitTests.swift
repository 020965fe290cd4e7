import Foundation
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP
@testable import FlashSaleJournal
@testable import InventoryActor

/// The pure parts of the abuse guards: buckets, client addresses, bounded tables, deadlines.
@Suite struct GuardsTests {
    static let nowMs: Int64 = 1_795_000_000_000

    // MARK: Token bucket

    @Test func tokenBucketAllowsBurstThenRefillsAtRate() {
        var bucket = TokenBucket(burst: 5, nowMs: 0)
        // (time ms, expected)
        let rows: [(Int64, RateLimitDecision)] = [
            (0, .allowed), (0, .allowed), (0, .allowed), (0, .allowed), (0, .allowed),
            (0, .limited(retryAfterSeconds: 1)),
            (100, .limited(retryAfterSeconds: 1)),  // half a token
            (200, .allowed),  // one token after 1/5 s
            (200, .limited(retryAfterSeconds: 1)),
            (10_000, .allowed),  // refilled, capped at burst
            (10_000, .allowed), (10_000, .allowed), (10_000, .allowed), (10_000, .allowed),
            (10_000, .limited(retryAfterSeconds: 1)),
        ]
        for (index, row) in rows.enumerated() {
            #expect(bucket.take(nowMs: row.0, ratePerSecond: 5, burst: 5) == row.1, "row \(index)")
        }
    }

    @Test func slowRateAsksForWholeSecondsAtLeastOne() {
        var bucket = TokenBucket(burst: 1, nowMs: 0)
        #expect(bucket.take(nowMs: 0, ratePerSecond: 0.25, burst: 1) == .allowed)
        #expect(bucket.take(nowMs: 0, ratePerSecond: 0.25, burst: 1) == .limited(retryAfterSeconds: 4))
        #expect(bucket.take(nowMs: 3_500, ratePerSecond: 0.25, burst: 1) == .limited(retryAfterSeconds: 1))
        #expect(bucket.take(nowMs: 4_000, ratePerSecond: 0.25, burst: 1) == .allowed)
    }

    // MARK: Client addresses

    @Test func addressesParseToOneCanonicalForm() {
        let rows: [(String, String?)] = [
            ("1.2.3.4", "1.2.3.4"), ("::ffff:1.2.3.4", "1.2.3.4"), ("::1", "::1"), ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
            ("2001:db8:0:1:0:0:0:0", "2001:db8:0:1::"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"), ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"), ("::", "::"),
            ("010.0.0.1", nil), ("1.2.3", nil), ("evil", nil), ("", nil), ("1.2.3.4.5", nil), ("fe80::1%eth0", nil),
        ]
        for (text, expected) in rows {
            #expect(ClientAddress(text)?.description == expected, "\(text)")
        }
    }

    @Test func forwardedHopsParseWithPortsAndBracketsAndRefuseGarbage() {
        let rows: [(Substring, String?)] = [
            (" 1.2.3.4 ", "1.2.3.4"), ("1.2.3.4:8080", "1.2.3.4"), ("[2001:db8::7]", "2001:db8::7"), ("[2001:db8::7]:443", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"), ("unknown", nil), ("", nil), ("1.2.3.4:http", nil), ("[::1", nil), ("[::1]x", nil),
            (Substring(String(repeating: "1", count: 500)), nil),
        ]
        for (hop, expected) in rows {
            #expect(ClientAddress.parseHop(hop)?.description == expected, "\(hop)")
        }
    }

    @Test func clientAddressIsTheRightMostUntrustedHopBehindATrustedPeer() {
        let proxies = TrustedProxies(cidrs: ["10.0.0.0/8", "2001:db8::/32", "192.168.1.7"])
        let rows: [(peer: String, xff: [String], expected: String, why: String)] = [
            ("203.0.113.9", ["1.1.1.1"], "203.0.113.9", "untrusted peer: the header is ignored"),
            ("203.0.113.9", [], "203.0.113.9", "no header"),
            ("10.1.2.3", ["198.51.100.4"], "198.51.100.4", "one proxy"),
            ("10.1.2.3", ["6.6.6.6, 198.51.100.4"], "198.51.100.4", "a spoofed left-most hop is never used"),
            ("10.1.2.3", ["6.6.6.6, 198.51.100.4, 10.9.9.9"], "198.51.100.4", "trusted hops are skipped"),
            ("10.1.2.3", ["6.6.6.6", "198.51.100.4, 10.9.9.9"], "198.51.100.4", "several headers read as one list, in order"),
            ("10.1.2.3", ["6.6.6.6, garbage"], "10.1.2.3", "garbage stops the walk: the peer answers"),
            ("10.1.2.3", ["6.6.6.6, , 10.0.0.1"], "10.1.2.3", "an empty hop is garbage too"),
            ("10.1.2.3", ["10.0.0.1, 10.0.0.2"], "10.1.2.3", "every hop trusted: the peer"),
            ("10.1.2.3", [], "10.1.2.3", "trusted peer without a header"),
            ("::ffff:10.1.2.3", ["198.51.100.4"], "198.51.100.4", "an IPv4-mapped peer matches an IPv4 CIDR"),
            ("2001:db8::1", ["2001:db9::5"], "2001:db9::5", "IPv6 CIDR"),
            ("2001:db9::1", ["198.51.100.4"], "2001:db9::1", "outside the IPv6 CIDR"),
            ("192.168.1.7", ["[2001:db9::5]:1234"], "2001:db9::5", "bare-address entry, bracketed hop"),
            ("192.168.1.8", ["198.51.100.4"], "192.168.1.8", "a bare address trusts only itself"),
        ]
        for row in rows {
            let got = proxies.clientAddress(peer: ClientAddress(row.peer)!, forwardedFor: row.xff)
            #expect(got.description == row.expected, "\(row.why)")
        }
        let long = (0..<(EngineLimits.forwardedForHopsMax + 5)).map { _ in "10.0.0.1" }.joined(separator: ",")
        #expect(proxies.clientAddress(peer: ClientAddress("10.1.2.3")!, forwardedFor: ["6.6.6.6," + long]).description == "10.1.2.3")
        #expect(TrustedProxies(cidrs: []).clientAddress(peer: ClientAddress("10.1.2.3")!, forwardedFor: ["1.1.1.1"]).description == "10.1.2.3")
        #expect(TrustedProxies(cidrs: ["0.0.0.0/0"]).contains(ClientAddress("8.8.8.8")!))
        #expect(!TrustedProxies(cidrs: ["0.0.0.0/0"]).contains(ClientAddress("2001:db8::1")!))
    }

    // MARK: Bounded tables

    @Test func hundredThousandAddressesStayWithinTheLimiterBound() {
        let limiter = RateLimiter(ratePerSecond: 5, burst: 5)
        #expect(limiter.entriesMax < 100_000, "the test must overflow the table")
        for index in 0..<100_000 {
            // Half IPv4 addresses, half IPv6 /64s: each one a distinct bucket.
            let low = [UInt8(index >> 24 & 0xff), UInt8(index >> 16 & 0xff), UInt8(index >> 8 & 0xff), UInt8(index & 0xff)]
            let address = index % 2 == 0
                ? ClientAddress(bytes16: ClientAddress.mappedPrefix + [10] + low.dropFirst())
                : ClientAddress(bytes16: [0x20, 0x01, 0x0d, 0xb8] + low + Array(repeating: 0, count: 8))
            // All within one second: no bucket is idle, so the cap is what bounds the table.
            _ = limiter.take(address, nowMs: Self.nowMs + Int64(index / 100_000))
            if index % 10_000 == 0 { #expect(limiter.entryCount <= limiter.entriesMax) }
        }
        #expect(limiter.entryCount <= limiter.entriesMax)
        #expect(limiter.entryCount > limiter.entriesMax / 2, "the table is used, not emptied")
        #expect(limiter.tableBytes <= limiter.bytesMax, "\(limiter.tableBytes) > \(limiter.bytesMax)")
        // Once every bucket has refilled, the next sweeps drop them all.
        let later = Self.nowMs + EngineLimits.rateLimitSweepIntervalMs + 2_000
        for index in 0..<5_000 {
            _ = limiter.take(ClientAddress("10.0.\(index / 250).\(index % 250)")!, nowMs: later)
        }
        #expect(limiter.entryCount <= 5_000)
    }

    @Test func oneIPv6SubscriberPrefixSharesABucket() {
        let limiter = RateLimiter(ratePerSecond: 1, burst: 1)
        #expect(limiter.take(ClientAddress("2001:db8:1:2::1")!, nowMs: Self.nowMs) == .allowed)
        #expect(limiter.take(ClientAddress("2001:db8:1:2:ffff::9")!, nowMs: Self.nowMs) == .limited(retryAfterSeconds: 1), "same /64")
        #expect(limiter.take(ClientAddress("2001:db8:1:3::1")!, nowMs: Self.nowMs) == .allowed, "another /64")
        #expect(limiter.take(ClientAddress("10.0.0.1")!, nowMs: Self.nowMs) == .allowed)
        #expect(limiter.take(ClientAddress("10.0.0.2")!, nowMs: Self.nowMs) == .allowed, "IPv4 is per address")
    }

    @Test func idempotencyStoreExpiresAfterADayAndKeepsItsBound() async {
        let store = IdempotencyStore(entriesMax: 16 * 8, bytesMax: 16 * 1024)
        func answer(_ index: Int, atMs: Int64) -> IdempotentAnswer {
            IdempotentAnswer(user: "u\(index)", key: "k", status: 201, body: Array("{\"n\":\(index)}".utf8), atMs: atMs)
        }
        for index in 0..<1_000 {
            guard case .proceed(let claim) = await store.begin(user: "u\(index)", key: "k", digest: "d", nowMs: Self.nowMs) else {
                Issue.record("a new key must proceed")
                return
            }
            store.finish(claim, answer: answer(index, atMs: Self.nowMs))
            #expect(store.entryCount <= 16 * 8)
            #expect(store.accountedBytes <= 16 * 1024)
        }
        // The newest is replayed; the oldest were dropped and run again.
        guard case .replay(let replayed) = await store.begin(user: "u999", key: "k", digest: "d", nowMs: Self.nowMs) else {
            Issue.record("the newest answer must be kept")
            return
        }
        #expect(replayed == answer(999, atMs: Self.nowMs))
        guard case .proceed = await store.begin(user: "u0", key: "k", digest: "d", nowMs: Self.nowMs) else {
            Issue.record("the oldest answer must have been dropped")
            return
        }
        // A day later nothing is replayed.
        guard case .proceed = await store.begin(user: "u999", key: "k", digest: "d", nowMs: Self.nowMs + EngineLimits.idempotencyWindowMs) else {
            Issue.record("an answer older than 24 h must not be replayed")
            return
        }
    }

    @Test func idempotencyKeysAreOneToSixtyFourVisibleASCII() {
        #expect(IdempotencyStore.isValidKey("a"))
        #expect(IdempotencyStore.isValidKey(String(repeating: "k", count: 64)))
        #expect(IdempotencyStore.isValidKey("order-2026-11-25T12:00:00Z~!"))
        #expect(!IdempotencyStore.isValidKey(""))
        #expect(!IdempotencyStore.isValidKey(String(repeating: "k", count: 65)))
        #expect(!IdempotencyStore.isValidKey("has space"))
        #expect(!IdempotencyStore.isValidKey("tab\t"))
        #expect(!IdempotencyStore.isValidKey("ключ"))
    }

    // MARK: Deadlines

    @Test func readDeadlineStateMachine() {
        var machine = ReadDeadlineStateMachine(idleTimeoutMs: 1_000, readTimeoutMs: 100)
        typealias Action = ReadDeadlineStateMachine.Action
        let rows: [(String, (inout ReadDeadlineStateMachine) -> Action, Action)] = [
            ("first byte starts the read clock", { $0.bytesRead() }, .arm(ms: 100)),
            ("more bytes do not reset it (slowloris)", { $0.bytesRead() }, .none),
            ("a whole request stops it", { $0.requestComplete() }, .disarm),
            ("the answer restarts the idle clock", { $0.responseSent() }, .arm(ms: 1_000)),
            ("next request", { $0.bytesRead() }, .arm(ms: 100)),
            ("complete", { $0.requestComplete() }, .disarm),
            ("bytes of a pipelined request while answering", { $0.bytesRead() }, .none),
            ("answer sent with bytes waiting: read clock", { $0.responseSent() }, .arm(ms: 100)),
            ("pipelined request complete", { $0.requestComplete() }, .disarm),
            ("another pipelined request complete", { $0.requestComplete() }, .disarm),
            ("first of two answers", { $0.responseSent() }, .none),
            ("second of two answers", { $0.responseSent() }, .arm(ms: 1_000)),
        ]
        #expect(machine.start() == .arm(ms: 1_000))
        for (why, step, expected) in rows {
            #expect(step(&machine) == expected, "\(why)")
        }
    }
}
