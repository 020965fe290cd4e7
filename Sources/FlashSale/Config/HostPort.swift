/// A listen address: a host (a name, an IPv4 address or an IPv6 address) and a TCP port.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// The host as given, IPv6 without its brackets (`::1`).
    public var host: String
    /// The TCP port, 0...65535; 0 asks the system for a free one (tests).
    public var port: Int

    /// What a valid address looks like, for error messages.
    static let syntaxHint = "host:port like 127.0.0.1:8080 or [::1]:8080"

    /// Longest host name (RFC 1035).
    static let hostBytesMax = 253

    /// Creates an address from checked parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`: `127.0.0.1:8080`, `[::1]:8080`, `localhost:0`; nil for anything else.
    ///
    /// An IPv6 host needs its brackets, since its colons would swallow the port.
    public init?(_ text: some StringProtocol) {
        let text = Substring(text)
        let hostPart: Substring
        let portPart: Substring
        if text.first == "[" {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.first == ":" else { return nil }
            portPart = rest.dropFirst()
            guard IPAddressSyntax.ipv6Bytes(hostPart) != nil else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            guard Self.isHostName(hostPart) else { return nil }
        }
        guard let port = Self.port(portPart) else { return nil }
        self.host = String(hostPart)
        self.port = port
    }

    /// Parses `host:port` from a command-line flag; the error names `key` (`--http`) as its key
    /// and `"command line"` as its source.
    public init(parsing text: String, key: String) throws(ConfigError) {
        guard let value = HostPort(text) else {
            throw ConfigError(
                source: "command line", key: key,
                problem: "expected \(Self.syntaxHint) (got \"\(text)\")")
        }
        self = value
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// A DNS name or an IPv4 address: letters, digits, `-`, `_` and dots; all-numeric means IPv4.
    private static func isHostName(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.utf8.count <= hostBytesMax else { return false }
        var allDigitsAndDots = true
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."):
                continue
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "-"), UInt8(ascii: "_"):
                allDigitsAndDots = false
            default:
                return false
            }
        }
        if allDigitsAndDots { return IPAddressSyntax.ipv4Bytes(text) != nil }
        return !text.split(separator: ".", omittingEmptySubsequences: false).contains { $0.isEmpty }
    }

    /// 1 to 5 decimal digits, 0...65535.
    private static func port(_ text: Substring) -> Int? {
        guard (1...5).contains(text.utf8.count),
            text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let value = Int(text), value <= 65535
        else { return nil }
        return value
    }
}
