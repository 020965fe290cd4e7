/// Hard limits of the HTTP edge, each with its unit and the reason for its size.
///
/// Everything a burst of clients could grow is bounded here or points here: bodies, headers,
/// connections, requests in flight (`admission.max_inflight`, from the config), time a client
/// may take to send a request, and the guards' tables (`RateLimiter`, `IdempotencyStore`).
public enum HTTPLimits {
    /// Largest request body, bytes: the contract's 16 KiB (`413 too_large` past it).
    public static let bodyBytesMax = 16 * 1024
    /// Longest time to wait for in-flight requests on shutdown, ms: SIGTERM must end in bounded time.
    public static let drainTimeoutMs: Int64 = 10_000

    /// Largest single header line (name + value), bytes: a bearer token is ~300 B; 8 KiB is nginx's default.
    public static let headerFieldBytesMax = 8 * 1024
    /// Largest request head (all header names and values), bytes: bounds what one connection
    /// buffers before the request is even routed; the decoder closes the connection past it.
    public static let headerBytesMax = 16 * 1024
    /// Most header fields in one request: a real client sends about ten.
    public static let headerFieldCountMax = 100
    /// Connections the kernel may hold waiting for `accept`, connections: absorbs the 8pm spike
    /// of new connections between two accept loops.
    public static let acceptBacklogConnections: Int32 = 4_096
    /// Most open client connections, connections: each holds buffers and a file descriptor;
    /// past it a new connection goes to the probe reserve, and past that it is closed at once.
    public static let connectionsMax = 10_000
    /// Connections admitted past `connectionsMax` for probes only, connections: at the cap
    /// `/healthz`, `/readyz` and `/metrics` still answer, so a load balancer or orchestrator
    /// never takes a full (and healthy) node for a dead one and restarts it mid-sale, and the
    /// person on duty can still scrape it. A reserve connection carries one request: a probe
    /// is answered, anything else gets `503 overloaded`; then it is closed. 32 is ample for a
    /// few load balancers and scrapers probing every second or so.
    public static let probeConnectionsReserve = 32
    /// Longest a reserve connection may take to send its one request, ms: a probe sends it at
    /// once, so an idle client cannot sit on a reserve slot.
    public static let probeReadTimeoutMs: Int64 = 1_000
    /// File descriptors kept for everything but client connections, descriptors: the journal's
    /// SQLite files, event-loop internals, `OpsLimits.opsConnectionsMax` ops connections, stdio.
    /// The daemon raises its open-file limit to fit connections plus these at start, and lowers
    /// `connectionsMax` if the hard limit is too low (so the journal never meets `EMFILE`).
    public static let descriptorsOtherMax = 256
    /// Longest a kept-alive connection may sit with no request, ms: frees idle sockets.
    public static let idleTimeoutMs: Int64 = 60_000
    /// Longest a client may take from the first byte of a request to its last, ms: a slowloris
    /// client that trickles its head or body is closed after it.
    public static let requestReadTimeoutMs: Int64 = 10_000
    /// `Retry-After` of a `503 overloaded`, seconds: in-flight requests finish in milliseconds.
    public static let overloadedRetryAfterSeconds = 1
    /// Response bytes waiting for a client that does not read, at most: past it the connection
    /// is closed. The server stops reading while the socket does not take its writes, so only
    /// the answers to the requests of one read can pile up (pipelined requests).
    public static let outboundBytesMax = 4 << 20
}

/// The edge limits one `HTTPServer` enforces; the defaults are `HTTPLimits`' (tests shorten them).
public struct HTTPServerLimits: Sendable {
    /// Requests being answered at once before new ones get `503 overloaded` (`admission.max_inflight`).
    public var inflightMax: Int
    /// Open client connections before new ones are closed at once.
    public var connectionsMax: Int
    /// Longest a connection may wait between requests, ms.
    public var idleTimeoutMs: Int64
    /// Longest from a request's first byte to its last, ms.
    public var requestReadTimeoutMs: Int64
    /// Connections past `connectionsMax` kept for probes (`HTTPLimits.probeConnectionsReserve`).
    public var probeConnectionsReserve: Int
    /// Longest a reserve connection may take to send its one request, ms.
    public var probeReadTimeoutMs: Int64

    /// Limits with `HTTPLimits`' defaults and no admission cap unless given.
    public init(
        inflightMax: Int = .max, connectionsMax: Int = HTTPLimits.connectionsMax,
        idleTimeoutMs: Int64 = HTTPLimits.idleTimeoutMs, requestReadTimeoutMs: Int64 = HTTPLimits.requestReadTimeoutMs,
        probeConnectionsReserve: Int = HTTPLimits.probeConnectionsReserve, probeReadTimeoutMs: Int64 = HTTPLimits.probeReadTimeoutMs
    ) {
        precondition(inflightMax >= 1 && connectionsMax >= 1 && idleTimeoutMs >= 1 && requestReadTimeoutMs >= 1, "HTTP limits below 1")
        precondition(probeConnectionsReserve >= 0 && probeReadTimeoutMs >= 1, "probe reserve limits out of range")
        self.inflightMax = inflightMax
        self.connectionsMax = connectionsMax
        self.idleTimeoutMs = idleTimeoutMs
        self.requestReadTimeoutMs = requestReadTimeoutMs
        self.probeConnectionsReserve = probeConnectionsReserve
        self.probeReadTimeoutMs = probeReadTimeoutMs
    }

    /// Descriptors the process needs open for these limits: every connection, the probe
    /// reserve, and `HTTPLimits.descriptorsOtherMax` for the rest.
    public var descriptorsNeeded: Int { connectionsMax + probeConnectionsReserve + HTTPLimits.descriptorsOtherMax }

    /// These limits with `connectionsMax` lowered, if need be, so that `descriptorsNeeded`
    /// fits in `descriptorsAvailable` (the open-file limit); at least one connection is kept.
    public func fitting(descriptorsAvailable: Int) -> HTTPServerLimits {
        var limits = self
        let room = descriptorsAvailable - probeConnectionsReserve - HTTPLimits.descriptorsOtherMax
        limits.connectionsMax = max(1, min(connectionsMax, room))
        return limits
    }
}
