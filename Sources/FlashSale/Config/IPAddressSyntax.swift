/// Parses IP addresses and CIDRs as text (RFC 791 dotted quads, RFC 4291 §2.2 IPv6 forms).
///
/// Written by hand rather than with `inet_pton` so that it needs no platform C library and
/// says the same thing on Linux and macOS.
enum IPAddressSyntax {
    /// The 4 bytes of a dotted quad (`10.0.0.1`); nil for anything else, leading zeros included
    /// (`010.0.0.1`), since some parsers read them as octal.
    static func ipv4Bytes(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4)
        for part in parts {
            guard (1...3).contains(part.utf8.count),
                part.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                part == "0" || part.first != "0",
                let value = UInt8(part)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    /// The 16 bytes of an IPv6 address in any RFC 4291 text form (`::1`, `2001:db8::`,
    /// `::ffff:10.0.0.1`); nil for anything else. Zone ids (`%eth0`) are not accepted.
    static func ipv6Bytes(_ text: Substring) -> [UInt8]? {
        guard (2...45).contains(text.utf8.count) else { return nil }
        var parts = text.split(separator: ":", omittingEmptySubsequences: false)
        // A leading or trailing "::" splits into two empty parts; keep one as the gap marker.
        if parts.first?.isEmpty == true {
            guard parts.count > 1, parts[1].isEmpty else { return nil }
            parts.removeFirst()
        }
        if parts.last?.isEmpty == true {
            guard parts.count > 1, parts[parts.count - 2].isEmpty else { return nil }
            parts.removeLast()
        }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        for (index, part) in parts.enumerated() {
            if part.isEmpty {
                guard !sawGap else { return nil }
                sawGap = true
                continue
            }
            var groups: [UInt16] = []
            if part.contains(".") {
                guard index == parts.count - 1, let quad = ipv4Bytes(part) else { return nil }
                groups = [UInt16(quad[0]) << 8 | UInt16(quad[1]), UInt16(quad[2]) << 8 | UInt16(quad[3])]
            } else {
                guard (1...4).contains(part.utf8.count), let group = UInt16(part, radix: 16),
                    part.utf8.allSatisfy(isHexDigit)
                else { return nil }
                groups = [group]
            }
            if sawGap { tail += groups } else { head += groups }
        }
        let count = head.count + tail.count
        guard sawGap ? count <= 7 : count == 8 else { return nil }
        let groups = head + Array(repeating: 0, count: 8 - count) + tail
        return groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    /// The CIDR `address/prefix` for `text`, a CIDR or a bare address (which gets `/32` or
    /// `/128`); nil when the address or the prefix length is not valid.
    static func normalizedCIDR(_ text: String) -> String? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else { return nil }
        let address = parts[0]
        let bitsMax: Int
        if ipv4Bytes(address) != nil {
            bitsMax = 32
        } else if ipv6Bytes(address) != nil {
            bitsMax = 128
        } else {
            return nil
        }
        guard parts.count == 2 else { return "\(address)/\(bitsMax)" }
        let prefix = parts[1]
        guard (1...3).contains(prefix.utf8.count),
            prefix.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            prefix == "0" || prefix.first != "0",
            let bits = Int(prefix), bits <= bitsMax
        else { return nil }
        return text
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            return true
        default:
            return false
        }
    }
}
