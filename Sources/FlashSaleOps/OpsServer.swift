import FlashSale
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The ops TCP listener (§4): frames lines, checks them against the command table,
/// runs one command at a time per connection, and answers in order.
public final class OpsServer: Sendable {
    private let engine: SaleEngine
    private let watchHub: StockWatchHub
    private let opsSecret: String?
    private let group: any EventLoopGroup
    private let idleTimeout: TimeAmount
    private let logger: Logger
    private let state = Mutex<State>(State())

    private struct State {
        var serverChannel: (any Channel)?
        var children: [ObjectIdentifier: any Channel] = [:]
    }

    /// A server over `engine`; `watchHub` must be the shards' observer (or part of it) for
    /// `WATCH` to see changes; `AUTH` compares against `opsSecret`; a connection silent for
    /// `idleTimeout` (and not watching) is closed.
    public init(
        engine: SaleEngine, watchHub: StockWatchHub, opsSecret: String? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        idleTimeout: TimeAmount = .seconds(OpsLimits.opsIdleTimeoutSeconds), logger: Logger
    ) {
        self.engine = engine
        self.watchHub = watchHub
        self.opsSecret = opsSecret
        self.group = group
        self.idleTimeout = idleTimeout
        self.logger = logger
    }

    /// Connections open now.
    public var connectionCount: Int { state.withLock { $0.children.count } }

    /// Binds and starts accepting; returns the bound port (useful with port 0).
    public func start(host: String, port: Int) async throws -> Int {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // `nc -N` half-closes after sending: without this it would get no answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    guard self.admit(channel) else {
                        try sync.addHandler(OpsRefusingHandler())
                        return
                    }
                    try sync.addHandler(IdleStateHandler(readTimeout: self.idleTimeout))
                    try Self.addConnectionHandlers(
                        to: channel, engine: self.engine, watchHub: self.watchHub, opsSecret: self.opsSecret, logger: self.logger)
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        state.withLock { $0.serverChannel = channel }
        let bound = channel.localAddress?.port ?? port
        logger.info("ops listening", metadata: ["address": "\(host):\(bound)"])
        return bound
    }

    /// Stops accepting and closes every connection (watches end with them).
    public func shutdown() async {
        let serverChannel = state.withLock { state -> (any Channel)? in
            defer { state.serverChannel = nil }
            return state.serverChannel
        }
        try? await serverChannel?.close()
        let children = state.withLock { Array($0.children.values) }
        for child in children { try? await child.close() }
        logger.info("ops stopped")
    }

    /// The handlers every admitted connection runs (after its idle timer): the line decoder,
    /// then the command handler. Public to the fuzz target, which drives them on a test channel.
    @_spi(Fuzzing)
    public static func addConnectionHandlers(
        to channel: any Channel, engine: SaleEngine, watchHub: StockWatchHub, opsSecret: String?, logger: Logger
    ) throws {
        let sync = channel.pipeline.syncOperations
        // No reading while the socket takes no more writes (a client that sends and never reads).
        try sync.addHandler(BackPressureHandler())
        try sync.addHandler(ByteToMessageHandler(OpsLineDecoder()))
        let context = OpsContext(engine: engine, watchHub: watchHub, opsSecret: opsSecret, channel: channel)
        try sync.addHandler(OpsConnectionHandler(context: context, logger: logger))
    }

    /// Tracks `channel` unless `OpsLimits.opsConnectionsMax` are open already.
    private func admit(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let admitted = state.withLock { state -> Bool in
            guard state.children.count < OpsLimits.opsConnectionsMax else { return false }
            state.children[id] = channel
            return true
        }
        if admitted {
            channel.closeFuture.whenComplete { [self] _ in _ = state.withLock { $0.children.removeValue(forKey: id) } }
        } else {
            logger.warning("ops connection refused: limit reached", metadata: ["limit": "\(OpsLimits.opsConnectionsMax)"])
        }
        return admitted
    }
}

/// Answers a connection over the limit with one `ERR`, then closes it.
final class OpsRefusingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        let reply = OpsReply.error(code: "too_many_connections", text: "at most \(OpsLimits.opsConnectionsMax) ops connections")
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(reply.buffer(context.channel.allocator))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// One ops connection: a queue of frames answered one at a time, in order; its auth state;
/// its watch. Runs on the channel's event loop only.
final class OpsConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = OpsFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let opsContext: OpsContext
    private let logger: Logger
    private var queue = CircularBuffer<OpsFrame>()
    private var busy = false
    private var closing = false
    private var active = true
    private var inputClosed = false
    private var readPending = false
    private var authenticated = false
    private var authFailures = 0
    private var watch: WatchSubscription?

    init(context: OpsContext, logger: Logger) {
        self.opsContext = context
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        queue.append(unwrapInboundIn(data))
        process(context)
    }

    /// Holds reads while `OpsLimits.opsQueuedLinesMax` lines wait (back-pressure).
    func read(context: ChannelHandlerContext) {
        if queue.count >= OpsLimits.opsQueuedLinesMax {
            readPending = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // Half-closed (`nc -N`): answer what was sent, then close, unless watching.
            inputClosed = true
            process(context)
        } else if event is IdleStateHandler.IdleStateEvent {
            guard watch == nil, !busy, !closing else { return }
            closing = true
            let reply = OpsReply.error(code: "idle_timeout", text: "nothing received for too long; closing")
            writeThenClose(reply, context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        stopWatching()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("ops connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    /// The socket takes writes again: answer what waits.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { process(context) }
        context.fireChannelWritabilityChanged()
    }

    /// Answers queued frames in order until one needs the engine, or the socket takes no more
    /// replies (a client that does not read); resumes when it is answered or writable again.
    private func process(_ context: ChannelHandlerContext) {
        while !busy, !closing, context.channel.isWritable, let frame = queue.popFirst() {
            switch frame {
            case .tooLong:
                closing = true
                let reply = OpsReply.error(code: "line_too_long", text: "line over \(OpsLimits.opsLineBytesMax) bytes; closing")
                writeThenClose(reply, context: context)
                return
            case .malformed(let reason):
                write(.error(code: "bad_request", text: reason), context: context)
            case .line(let line):
                switch OpsCommands.table.dispatch(line, authenticated: authenticated) {
                case .reply(let reply):
                    write(reply, context: context)
                case .run(let command, let arguments):
                    run(command, arguments, context: context)
                }
            }
        }
        if !busy, readPending, queue.count < OpsLimits.opsQueuedLinesMax {
            readPending = false
            context.read()
        }
        if !busy, !closing, queue.isEmpty, inputClosed, watch == nil {
            closing = true
            context.close(promise: nil)
        }
    }

    private func run(_ command: OpsCommand, _ arguments: [String], context: ChannelHandlerContext) {
        busy = true
        let opsContext = self.opsContext
        let promise = context.eventLoop.makePromise(of: OpsOutcome.self)
        promise.completeWithTask {
            guard command.usesEngine else { return await command.run(opsContext, arguments) }
            let outcome = await opsContext.engine.admitted { await command.run(opsContext, arguments) }
            return outcome ?? OpsOutcome(reply: OpsReply(SaleEngine.notReady))
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let peer = context.channel.remoteAddress.map { address in
            address.ipAddress.map { ip in address.protocol == .inet6 ? "[\(ip)]:\(address.port ?? 0)" : "\(ip):\(address.port ?? 0)" } ?? "\(address)"
        } ?? "unknown"
        promise.futureResult.whenSuccess { [logger] outcome in
            let (handler, context) = bound.value
            if command.needsAuth {
                // Every ops write, for the audit trail (the log shipper's, with --log-format json).
                let result: String
                switch outcome.reply {
                case .error(let code, _): result = code
                default: result = "ok"
                }
                opsContext.engine.audit.record(
                    atMs: opsContext.engine.clock.nowMs(), door: "ops", peer: peer,
                    what: ([command.name] + arguments).joined(separator: " "), result: result)
                logger.info(
                    "ops write",
                    metadata: [
                        "door": "ops", "command": "\(command.name)", "arguments": "\(arguments.joined(separator: " "))",
                        "peer": "\(peer)", "result": "\(result)",
                    ])
            }
            handler.busy = false
            handler.apply(outcome, context: context)
            handler.process(context)
        }
    }

    private func apply(_ outcome: OpsOutcome, context: ChannelHandlerContext) {
        switch outcome.effect {
        case .none:
            write(outcome.reply, context: context)
        case .authenticated:
            authenticated = true
            authFailures = 0
            write(outcome.reply, context: context)
        case .authFailed:
            authFailures += 1
            if authFailures >= OpsLimits.opsAuthFailuresMax {
                closing = true
                writeThenClose(outcome.reply, context: context)
            } else {
                write(outcome.reply, context: context)
            }
        case .close:
            closing = true
            writeThenClose(outcome.reply, context: context)
        case .watch(let subscription):
            guard active, !closing else {
                opsContext.watchHub.remove(subscription)
                return
            }
            stopWatching()
            watch = subscription
            write(outcome.reply, context: context)
            subscription.start()
        }
    }

    private func stopWatching() {
        guard let watch else { return }
        watch.cancel()
        opsContext.watchHub.remove(watch)
        self.watch = nil
    }

    private func write(_ reply: OpsReply, context: ChannelHandlerContext) {
        guard reply != .none, active else { return }
        context.writeAndFlush(wrapOutboundOut(reply.buffer(context.channel.allocator)), promise: nil)
        if !context.channel.isWritable,
            let buffered = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes), buffered > OpsLimits.outboundBytesMax
        {
            closing = true
            context.close(promise: nil)
        }
    }

    private func writeThenClose(_ reply: OpsReply, context: ChannelHandlerContext) {
        let channel = context.channel
        stopWatching()
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(reply.buffer(channel.allocator)), promise: promise)
        promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }
}
