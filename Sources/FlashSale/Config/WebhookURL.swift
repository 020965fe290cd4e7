/// A webhook receiver's address, as `webhooks[].url` gives it: `http://` or `https://`, a host,
/// an optional port and a path. Only what a receiver needs; no user info, no fragment.
public struct WebhookURL: Sendable, Equatable {
    /// Whether to use TLS.
    public var isTLS: Bool
    /// The host name or address (IPv6 without brackets).
    public var host: String
    /// The port (80 or 443 when the URL names none).
    public var port: Int
    /// The path and query, at least `/`.
    public var path: String

    /// The parts of `text`; nil when it is not such a URL.
    public init?(_ text: String) {
        let lowered = text.lowercased()
        let rest: Substring
        if lowered.hasPrefix("http://") {
            isTLS = false
            rest = text.dropFirst(7)
        } else if lowered.hasPrefix("https://") {
            isTLS = true
            rest = text.dropFirst(8)
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard !authority.isEmpty, !authority.contains("@"), !text.contains("#"),
            !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f })
        else { return nil }
        var hostPart = authority
        var port = isTLS ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let parsed = Int(after.dropFirst()), (1...65_535).contains(parsed) else { return nil }
                port = parsed
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let parsed = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(parsed) else { return nil }
            port = parsed
            hostPart = authority[..<colon]
        }
        guard !hostPart.isEmpty else { return nil }
        host = String(hostPart)
        self.port = port
        let tail = rest[authorityEnd...]
        path = tail.isEmpty ? "/" : (tail.hasPrefix("?") ? "/" + tail : String(tail))
    }
}
