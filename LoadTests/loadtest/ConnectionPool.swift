import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP request the run sends, and what it was for.
struct OutgoingRequest {
    var endpoint: Endpoint
    /// When it was meant to be sent, nanoseconds from the start: latency counts from here, so a
    /// request that waited for a connection is charged for the wait (no coordinated omission).
    var intendedNs: UInt64
    /// The loopback address the connection is bound to (the client IP the server sees).
    var sourceIP: String
    var method: HTTPMethod
    var uri: String
    var headers: [(String, String)]
    var body: [UInt8]
    var followUp: FollowUp
}

/// The answer to a request; status 0 when the connection failed before an answer.
struct Answer {
    var status: Int
    var body: [UInt8]
}

/// Keep-alive HTTP/1.1 connections grouped by source address, at most `connectionsMax` in all,
/// one request in flight on each. A request with no idle connection for its address waits in
/// that address's queue while a new connection opens (or one frees up).
///
/// Confined to `loop`: every method runs there (hence `@unchecked Sendable`).
final class ConnectionPool: @unchecked Sendable {
    let loop: EventLoop
    private let target: SocketAddress
    private let connectionsMax: Int
    private let onAnswer: (OutgoingRequest, Answer) -> Void

    private var idle: [String: [ClientHandler]] = [:]
    private var waiting: [String: CircularBuffer<OutgoingRequest>] = [:]
    private var connecting: [String: Int] = [:]
    private var openByAddress: [String: Int] = [:]
    /// Addresses with requests waiting and no connection, because the pool is full.
    private var starved: CircularBuffer<String> = []
    private(set) var openCount = 0
    private(set) var connectFailures = 0
    private var closed = false

    init(loop: EventLoop, target: SocketAddress, connectionsMax: Int, onAnswer: @escaping (OutgoingRequest, Answer) -> Void) {
        self.loop = loop
        self.target = target
        self.connectionsMax = connectionsMax
        self.onAnswer = onAnswer
    }

    /// Sends `request` now on an idle connection of its address, or queues it.
    func send(_ request: OutgoingRequest) {
        loop.preconditionInEventLoop()
        guard !closed else { return }
        if let handler = idle[request.sourceIP]?.popLast() {
            handler.start(request)
            return
        }
        waiting[request.sourceIP, default: []].append(request)
        openIfNeeded(request.sourceIP)
    }

    /// Closes every idle connection and refuses new work; busy ones close with their channel.
    func close() {
        closed = true
        for handlers in idle.values { for handler in handlers { handler.channel?.close(promise: nil) } }
        idle = [:]
    }

    private func openIfNeeded(_ address: String) {
        let queued = waiting[address]?.count ?? 0
        guard queued > connecting[address, default: 0] else { return }
        if openCount >= connectionsMax {
            guard openByAddress[address, default: 0] == 0 else { return }  // one of its own will free up
            if let (other, victim) = idle.first(where: { !$0.value.isEmpty }).map({ ($0.key, $0.value.last!) }) {
                idle[other]!.removeLast()
                retire(victim, address: other)
            } else {
                if !starved.contains(address) { starved.append(address) }
                return
            }
        }
        connect(address)
    }

    private func connect(_ address: String) {
        openCount += 1
        openByAddress[address, default: 0] += 1
        connecting[address, default: 0] += 1
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ClientHandler(pool: self, address: address))
                }
            }
        let connected: EventLoopFuture<Channel>
        do {
            connected = bootstrap.bind(to: try SocketAddress(ipAddress: address, port: 0)).connect(to: target)
        } catch {
            connected = loop.makeFailedFuture(error)
        }
        connected.whenComplete { [self] result in
            connecting[address, default: 1] -= 1
            switch result {
            case .success(let channel):
                guard let handler = try? channel.pipeline.syncOperations.handler(type: ClientHandler.self) else {
                    channel.close(promise: nil)
                    return
                }
                ready(handler)
            case .failure:
                connectFailures += 1
                openCount -= 1
                openByAddress[address, default: 1] -= 1
                if let request = waiting[address]?.popFirst() { onAnswer(request, Answer(status: 0, body: [])) }
                openIfNeeded(address)
            }
        }
    }

    /// `handler`'s connection is free: serve its address's queue, a starved address, or idle.
    fileprivate func ready(_ handler: ClientHandler) {
        let address = handler.address
        if closed {
            retire(handler, address: address)
        } else if let next = waiting[address]?.popFirst() {
            handler.start(next)
        } else if let hungry = starved.popFirst() {
            retire(handler, address: address)
            openIfNeeded(hungry)
        } else {
            idle[address, default: []].append(handler)
        }
    }

    fileprivate func answered(_ handler: ClientHandler, _ request: OutgoingRequest, _ answer: Answer, keepAlive: Bool) {
        onAnswer(request, answer)
        if keepAlive { ready(handler) } else { retire(handler, address: handler.address) }
    }

    /// The connection closed (by either side); an unanswered request on it fails.
    fileprivate func lost(_ handler: ClientHandler, _ request: OutgoingRequest?) {
        if !handler.retired {
            handler.retired = true
            openCount -= 1
            openByAddress[handler.address, default: 1] -= 1
            idle[handler.address]?.removeAll { $0 === handler }
        }
        if let request { onAnswer(request, Answer(status: 0, body: [])) }
        if !closed, (waiting[handler.address]?.count ?? 0) > 0 { openIfNeeded(handler.address) }
    }

    private func retire(_ handler: ClientHandler, address: String) {
        guard !handler.retired else { return }
        handler.retired = true
        openCount -= 1
        openByAddress[address, default: 1] -= 1
        handler.channel?.close(promise: nil)
    }
}

/// One connection's request/response cycle; confined to its channel's loop (the pool's).
final class ClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let address: String
    private unowned let pool: ConnectionPool
    private(set) var channel: Channel?
    private var context: ChannelHandlerContext?
    private var current: OutgoingRequest?
    private var status = 0
    private var keepAlive = true
    private var body: [UInt8] = []
    fileprivate var retired = false

    init(pool: ConnectionPool, address: String) {
        self.pool = pool
        self.address = address
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.channel = context.channel
    }

    func start(_ request: OutgoingRequest) {
        guard let context else { return pool.lost(self, request) }
        current = request
        body.removeAll(keepingCapacity: true)
        var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.uri)
        head.headers.add(name: "host", value: "flashsale")
        head.headers.add(name: "content-length", value: String(request.body.count))
        for (name, value) in request.headers { head.headers.add(name: name, value: value) }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !request.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: request.body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
        case .body(let buffer):
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            guard let request = current else { return }
            current = nil
            pool.answered(self, request, Answer(status: status, body: body), keepAlive: keepAlive)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let request = current
        current = nil
        pool.lost(self, request)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
