import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP receiver on a loopback socket, for the webhook tests: it keeps every request it
/// reads and answers each as `behavior` says (a status, or never).
final class WebhookTestReceiver: Sendable {
    /// What the receiver does with a request.
    enum Answer: Sendable {
        case status(Int)
        /// Reads the request and never answers (the client's timeout must end it).
        case hang
    }

    /// One request as read.
    struct Delivery: Sendable {
        var id: Int64
        var timestamp: String
        var signature: String
        var body: [UInt8]
        var answered: Bool
    }

    /// What the receiver and its connections share.
    final class State: Sendable {
        let received = Mutex<[Delivery]>([])
        let behavior: Mutex<@Sendable (Int) -> Answer>
        init(behavior: @escaping @Sendable (Int) -> Answer) { self.behavior = Mutex(behavior) }
    }

    let port: Int
    private let channel: any Channel
    private let state: State

    /// Listens on `port` (0: any free port) and answers with `behavior`, given the number of
    /// requests seen before this one.
    init(port: Int = 0, behavior: @escaping @Sendable (Int) -> Answer = { _ in .status(200) }) async throws {
        let state = State(behavior: behavior)
        self.state = state
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(state: state))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        self.channel = channel
        self.port = channel.localAddress?.port ?? port
    }

    /// `http://127.0.0.1:<port>/hook`.
    var url: String { "http://127.0.0.1:\(port)/hook" }

    /// Every request read so far, in arrival order.
    var deliveries: [Delivery] { state.received.withLock { $0 } }

    /// The requests answered 2xx, in arrival order.
    var accepted: [Delivery] { deliveries.filter(\.answered) }

    /// Answers later requests with `behavior`.
    func setBehavior(_ behavior: @escaping @Sendable (Int) -> Answer) { state.behavior.withLock { $0 = behavior } }

    func close() async throws { try await channel.close() }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let state: State
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(state: State) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head else { return }
                let seen = state.received.withLock { $0.count }
                let answer = state.behavior.withLock { $0 }(seen)
                var answeredStatus: Int?
                if case .status(let status) = answer { answeredStatus = status }
                let delivery = Delivery(
                    id: Int64(head.headers.first(name: "x-flashsale-id") ?? "") ?? -1,
                    timestamp: head.headers.first(name: "x-flashsale-timestamp") ?? "",
                    signature: head.headers.first(name: "x-flashsale-signature") ?? "",
                    body: body, answered: answeredStatus.map { (200..<300).contains($0) } ?? false)
                state.received.withLock { $0.append(delivery) }
                guard let status = answeredStatus else { return }
                var responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status))
                responseHead.headers.add(name: "content-length", value: "0")
                context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
