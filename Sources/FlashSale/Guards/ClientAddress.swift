// Guards
//
// What stands between a flood of requests and the engine: who the client is (`ClientAddress`,
// `TrustedProxies`, §3.2), how fast one address may post (`RateLimiter`), and which
// retries get the first answer back (`IdempotencyStore`). Admission control and the timeouts
// live in the HTTP target (`HTTPServer.swift`); every size and time limit is in `EngineLimits` or
// next to its table as a named constant with its unit.
//
// These types hold bounded tables only. They never touch the stock, never await the journal
// (the engine does that), never read a clock of their own (time comes in as `nowMs`), and never
// parse an address twice: `Config/IPAddressSyntax.swift` is the one parser.

/// An IP address as 16 bytes: IPv6 as is, IPv4 as its IPv4-mapped form (`::ffff:a.b.c.d`), so
/// that `10.0.0.1` and `::ffff:10.0.0.1` are one client and one CIDR table serves both families.
public struct ClientAddress: Hashable, Sendable, CustomStringConvertible {
    /// Bytes 0..<8, big-endian.
    public let high: UInt64
    /// Bytes 8..<16, big-endian.
    public let low: UInt64

    /// The address for 16 bytes (network order).
    init(bytes16 bytes: [UInt8]) {
        precondition(bytes.count == 16, "an IPv6 address is 16 bytes")
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
        for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
        self.high = high
        self.low = low
    }

    /// Parses a dotted quad or any RFC 4291 IPv6 text form; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let text = Substring(text)
        if let quad = IPAddressSyntax.ipv4Bytes(text) {
            self.init(bytes16: Self.mappedPrefix + quad)
        } else if let bytes = IPAddressSyntax.ipv6Bytes(text) {
            self.init(bytes16: bytes)
        } else {
            return nil
        }
    }

    /// Parses one `X-Forwarded-For` hop: an address, optionally `[v6]`, `[v6]:port` or
    /// `v4:port` (some proxies add the port); surrounding spaces are ignored. Nil for garbage.
    static func parseHop(_ hop: Substring) -> ClientAddress? {
        var text = hop.drop { $0 == " " || $0 == "\t" }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        if text.first == "[" {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.first == ":" && Self.isPort(rest.dropFirst())) else { return nil }
            return IPAddressSyntax.ipv6Bytes(text[text.index(after: text.startIndex)..<close]).map { ClientAddress(bytes16: $0) }
        }
        if let colon = text.firstIndex(of: ":"), text.lastIndex(of: ":") == colon, text.contains(".") {
            guard Self.isPort(text[text.index(after: colon)...]) else { return nil }
            text = text[..<colon]
        }
        return ClientAddress(text)
    }

    private static func isPort(_ text: Substring) -> Bool {
        (1...5).contains(text.utf8.count) && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    static let mappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

    /// Whether this is a loopback address: 127.0.0.0/8 or `::1`.
    public var isLoopback: Bool { isIPv4 ? (low >> 24) & 0xff == 127 : high == 0 && low == 1 }

    /// Whether this is an IPv4 address (IPv4-mapped).
    public var isIPv4: Bool { high == 0 && low >> 32 == 0xffff }

    /// Leading bits of an IPv6 address that name one client for the per-IP limits: one
    /// subscriber gets a whole /64, so counting full addresses would let it claim without limit.
    public static let ipv6ClientPrefixBits = 64

    /// The client a per-IP limit counts (rate limit, coupon `per_ip`): an IPv4 address as it
    /// is, an IPv6 one as its /64.
    public var perIPClient: ClientAddress { isIPv4 ? self : masked(toPrefix: Self.ipv6ClientPrefixBits) }

    /// The first `bits` bits kept, the rest zero (a CIDR's network).
    func masked(toPrefix bits: Int) -> ClientAddress {
        func mask(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? .max : ~(UInt64.max >> UInt64(bits)) }
        return ClientAddress(high: high & mask(bits), low: low & mask(bits - 64))
    }

    private init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A dotted quad for IPv4; RFC 5952 text (lowercase, longest zero run as `::`) for IPv6.
    public var description: String {
        if isIPv4 {
            let v4 = UInt32(truncatingIfNeeded: low)
            return "\(v4 >> 24).\(v4 >> 16 & 0xff).\(v4 >> 8 & 0xff).\(v4 & 0xff)"
        }
        let groups = (0..<8).map { index -> UInt16 in
            let word = index < 4 ? high : low
            return UInt16(truncatingIfNeeded: word >> UInt64(48 - 16 * (index % 4)))
        }
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > bestLength { bestStart = index; bestLength = end - index }
            index = end
        }
        func hex(_ range: Range<Int>) -> String { range.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

/// The `trusted_proxies` CIDRs, and the §3.2 rule that picks the client address behind them.
public struct TrustedProxies: Sendable {

    private let networks: [(network: ClientAddress, prefixBits: Int)]

    /// The proxies in `cidrs` (`10.0.0.0/8`, `2001:db8::/32`, or a bare address); entries that do
    /// not parse are skipped (the config loader has already refused them).
    public init(cidrs: [String]) {
        networks = cidrs.compactMap { text in
            let parts = text.split(separator: "/", maxSplits: 1)
            guard let first = parts.first, let address = ClientAddress(first) else { return nil }
            let familyBits = address.isIPv4 ? 32 : 128
            let bits = parts.count == 2 ? Int(parts[1]) ?? -1 : familyBits
            guard (0...familyBits).contains(bits) else { return nil }
            let prefixBits = address.isIPv4 ? 96 + bits : bits
            return (address.masked(toPrefix: prefixBits), prefixBits)
        }
    }

    /// Whether no proxy is trusted (the default): the peer is always the client.
    public var isEmpty: Bool { networks.isEmpty }

    /// Whether `address` is inside one of the trusted CIDRs.
    public func contains(_ address: ClientAddress) -> Bool {
        networks.contains { address.masked(toPrefix: $0.prefixBits) == $0.network }
    }

    /// The client per §3.2: `peer`, unless `peer` is trusted; then the right-most hop of
    /// `forwardedFor` (every `X-Forwarded-For` header value, in order) that is not trusted.
    ///
    /// The left-most hops are whatever the client wrote, so the walk goes right to left and
    /// stops at the first untrusted hop. A hop that is not an address stops it too, and the
    /// answer is then the peer: skipping it would reach the hops the client chose. When every
    /// hop examined (at most `EngineLimits.forwardedForHopsMax`) is trusted, the answer is the peer.
    public func clientAddress(peer: ClientAddress, forwardedFor: [String]) -> ClientAddress {
        guard !networks.isEmpty, contains(peer) else { return peer }
        var examined = 0
        for header in forwardedFor.reversed() {
            for hop in header.split(separator: ",", omittingEmptySubsequences: false).reversed() {
                examined += 1
                guard examined <= EngineLimits.forwardedForHopsMax else { return peer }
                guard let address = ClientAddress.parseHop(hop) else { return peer }
                if !contains(address) { return address }
            }
        }
        return peer
    }
}
