import FlashSale
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Answers requests; the HTTP server is a thin adapter in front of one of these.
public protocol HTTPResponder: Sendable {
    /// The answer to routes that need no `await` (health checks), or nil to go async.
    func respondImmediately(to request: APIRequest) -> APIResponse?
    /// The answer to every other request.
    func respond(to request: APIRequest) async -> APIResponse
    /// Whether `request` is a probe that needs an `await` (a metrics scrape): answered on the
    /// connections kept past the cap, like everything `respondImmediately` answers.
    func isProbe(_ request: APIRequest) -> Bool
    /// Answers `request` on `loop` (the connection's, which the caller is on) without a task,
    /// if it can: returns true and calls `reply` on `loop` exactly once, perhaps before
    /// returning. False: not taken (nothing was done), the server calls `respond(to:)`.
    func respond(to request: APIRequest, on loop: any EventLoop, reply: @escaping (APIResponse) -> Void) -> Bool
}

extension HTTPResponder {
    /// Only the immediate answers are probes.
    public func isProbe(_ request: APIRequest) -> Bool { false }
    /// Nothing is answered on the loop.
    public func respond(to request: APIRequest, on loop: any EventLoop, reply: @escaping (APIResponse) -> Void) -> Bool { false }
}

/// The HTTP/1.1 listener: SwiftNIO's HTTP codec, a body limit, and a hand-off to a `HTTPResponder`.
///
/// It owns sockets and bytes only; what a request means is the responder's business, so the
/// layer can be swapped without touching the engine. It enforces the edge's hard limits
/// (`HTTPServerLimits`, `HTTPLimits`): header bytes, connections, idle and read timeouts, and
/// admission control: past `inflightMax` requests in flight a new one is answered
/// `503 overloaded` at once, never queued.
///
/// Past `connectionsMax` open connections, up to `probeConnectionsReserve` more are admitted
/// as probe connections: one request each, read within `probeReadTimeoutMs`; a probe
/// (`/healthz`, `/readyz`, `/metrics`) is answered, anything else is `503 overloaded`, and the
/// connection is closed. Past the reserve a new connection is closed at once. So however many
/// idle clients hold the buyer slots, a health check still gets its answer.
public final class HTTPServer: Sendable {
    private let responder: any HTTPResponder
    private let group: any EventLoopGroup
    private let logger: Logger
    private let limits: HTTPServerLimits
    private let state = Mutex<State>(State())
    private let inflight = Atomic<Int>(0)

    private struct State {
        var serverChannel: (any Channel)?
        var children: [ObjectIdentifier: any Channel] = [:]
        /// Connections admitted from the probe reserve (also in `children`).
        var probes: Set<ObjectIdentifier> = []
        var acceptingRequests = true
    }

    /// A server answering with `responder` on `group`'s event loops, within `limits`.
    public init(
        responder: any HTTPResponder, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        limits: HTTPServerLimits = HTTPServerLimits(), logger: Logger
    ) {
        self.responder = responder
        self.group = group
        self.limits = limits
        self.logger = logger
    }

    /// The request decoder's limits: header bytes and fields (`HTTPLimits`).
    static var decoderLimits: NIOHTTPDecoderLimitConfiguration {
        var decoder = NIOHTTPDecoderLimitConfiguration()
        decoder.maxHeaderFieldSize = HTTPLimits.headerFieldBytesMax
        decoder.maxHeaderListSize = HTTPLimits.headerBytesMax
        decoder.maxHeaderFieldCount = HTTPLimits.headerFieldCountMax
        return decoder
    }

    /// Open client connections now, probe connections included.
    public var connectionCount: Int { state.withLock { $0.children.count } }

    /// Open connections admitted from the probe reserve now.
    public var probeConnectionCount: Int { state.withLock { $0.probes.count } }

    /// Requests being answered right now.
    public var inflightCount: Int { inflight.load(ordering: .relaxed) }

    /// Binds and starts accepting; returns the bound port (useful with port 0).
    public func start(host: String, port: Int) async throws -> Int {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: HTTPLimits.acceptBacklogConnections)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [self] channel in
                let probeOnly: Bool
                switch self.track(channel) {
                case .refused:
                    // Past `connectionsMax` and the probe reserve: refuse before any buffer is spent on it.
                    return channel.close()
                case .client: probeOnly = false
                case .probe: probeOnly = true
                }
                let idleTimeoutMs = probeOnly ? self.limits.probeReadTimeoutMs : self.limits.idleTimeoutMs
                let readTimeoutMs = probeOnly ? self.limits.probeReadTimeoutMs : self.limits.requestReadTimeoutMs
                return channel.eventLoop.makeCompletedFuture {
                    // NIO's request decoder, then our handler, which orders pipelined requests
                    // and writes each answer as one buffer (no response encoder, no pipelining
                    // handler: see `HTTPConnectionHandler`).
                    try channel.pipeline.syncOperations.addHandlers([
                        // No reading while the socket takes no more writes: a client that sends
                        // and never reads (pipelined requests) stalls itself, not the daemon's memory.
                        BackPressureHandler(),
                        ReadDeadlineHandler(idleTimeoutMs: idleTimeoutMs, readTimeoutMs: readTimeoutMs),
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: Self.decoderLimits)),
                        HTTPConnectionHandler(server: self, probeOnly: probeOnly),
                    ])
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        state.withLock { $0.serverChannel = channel }
        let bound = channel.localAddress?.port ?? port
        logger.info("http listening", metadata: ["address": "\(host):\(bound)"])
        return bound
    }

    /// Stops accepting, waits (bounded) for in-flight requests, then closes every connection.
    public func shutdown() async {
        let serverChannel = state.withLock { state -> (any Channel)? in
            state.acceptingRequests = false
            defer { state.serverChannel = nil }
            return state.serverChannel
        }
        try? await serverChannel?.close()
        var waitedMs: Int64 = 0
        while inflight.load(ordering: .acquiring) > 0 && waitedMs < HTTPLimits.drainTimeoutMs {
            try? await Task.sleep(for: .milliseconds(10))
            waitedMs += 10
        }
        let children = state.withLock { Array($0.children.values) }
        for child in children { try? await child.close() }
        logger.info("http stopped", metadata: ["drained_ms": "\(waitedMs)"])
    }

    /// How a new connection was admitted.
    enum Admission: Equatable {
        /// Within `connectionsMax`: a client connection.
        case client
        /// Past `connectionsMax`, within the probe reserve: one probe request, then closed.
        case probe
        /// Past both: closed at once.
        case refused
    }

    /// The admission of a new connection when `clients` client and `probes` probe connections are open.
    static func admission(clients: Int, probes: Int, limits: HTTPServerLimits) -> Admission {
        if clients < limits.connectionsMax { return .client }
        if probes < limits.probeConnectionsReserve { return .probe }
        return .refused
    }

    /// Counts `channel` as open until it closes, as a client or a probe connection; `.refused`
    /// (and not counted) past `connectionsMax` and the probe reserve.
    private func track(_ channel: any Channel) -> Admission {
        let id = ObjectIdentifier(channel)
        let admission = state.withLock { state -> Admission in
            let admission = Self.admission(clients: state.children.count - state.probes.count, probes: state.probes.count, limits: limits)
            switch admission {
            case .refused: break
            case .client: state.children[id] = channel
            case .probe:
                state.children[id] = channel
                state.probes.insert(id)
            }
            return admission
        }
        guard admission != .refused else { return .refused }
        channel.closeFuture.whenComplete { [self] _ in
            state.withLock { state in
                state.children.removeValue(forKey: id)
                state.probes.remove(id)
            }
        }
        return admission
    }

    var responderForHandler: any HTTPResponder { responder }
    /// Counts a request in flight; false (and not counted) at `inflightMax`: admission control.
    func tryBegin() -> Bool {
        if inflight.wrappingAdd(1, ordering: .relaxed).newValue <= limits.inflightMax { return true }
        inflight.subtract(1, ordering: .relaxed)
        return false
    }
    func end() { inflight.subtract(1, ordering: .releasing) }
}

