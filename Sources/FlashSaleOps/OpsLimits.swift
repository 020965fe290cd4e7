// The ops line protocol (§4): a TCP server for the person on duty on sale night.
// It owns its sockets, its line framing and its command table; every number it shows is read
// from the owning actor at that instant, and every change it makes goes through the engine
// (journaled like any other). It must never keep a copy of stock, and never poll.

/// Hard limits of the ops edge, each with its unit and the reason for its size.
public enum OpsLimits {
    /// Longest line, bytes, without its `\n` / `\r\n`: the contract's 4096 (`ERR line_too_long`, then close).
    public static let opsLineBytesMax = 4096
    /// Most ops connections open at once: a few people on duty plus dashboards, never a crowd.
    public static let opsConnectionsMax = 64
    /// Seconds a connection may send nothing before it is closed, so forgotten sessions do not
    /// pile up to `opsConnectionsMax`. A connection with an active `WATCH` is exempt: it is
    /// expected to sit and listen for the whole sale, and ends with `QUIT` or a close.
    public static let opsIdleTimeoutSeconds: Int64 = 600
    /// Most `WATCH` lines per second per connection (the contract's 10): changes in between coalesce.
    public static let watchLinesPerSecondMax = 10
    /// Lines read ahead of the one being answered before reading stops (back-pressure on a paste).
    public static let opsQueuedLinesMax = 256
    /// Reply bytes waiting for a client that does not read, at most: past it the connection is
    /// closed. Replies are answered only while the socket takes them (lines wait, reading
    /// stops, `WATCH` keeps only its latest state), so only one burst of replies can pile up.
    public static let outboundBytesMax = 1 << 20
    /// Failed `AUTH` attempts before the connection is closed: slows guessing to reconnect speed.
    public static let opsAuthFailuresMax = 3

    /// Shortest gap between two `WATCH` lines on one connection, ms.
    static var watchIntervalMs: Int64 { 1000 / Int64(watchLinesPerSecondMax) }
}
