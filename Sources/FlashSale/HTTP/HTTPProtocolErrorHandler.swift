import NIOCore
import NIOHTTP1

/// Answers a request the HTTP decoder cannot parse (bad request line, bad header bytes,
/// conflicting lengths) with the contract's `400 {"error":"bad_request","message":...}`, then
/// closes the connection once the answer is written (a head over the limits included), lingering
/// to drain what the client still sends so that the answer is not lost to a reset.
///
/// NIO's own `HTTPServerProtocolErrorHandler` does the same with an empty body, which breaks
/// the contract's "every error is a JSON object". Like NIO's, it tracks whether a response is
/// already on the wire so it never interleaves a second head into one.
final class HTTPProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// How long a refused connection is drained before it is closed, ms.
    static let lingerMs: Int64 = 2_000

    private var hasUnterminatedResponse = false
    /// The request stream was refused: answered (or not) and being closed.
    private var refused = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // Once: the decoder refuses everything after its first error.
        guard !refused else { return }
        refused = true
        // The stream cannot be framed any more: answer 400 (unless a response is half sent),
        // then close. A lingering close: our side is shut for writing once the answer is out,
        // and what the client is still sending is read and dropped until it closes too or
        // `lingerMs` passes, so the answer is not lost to a reset of unread bytes.
        let channel = context.channel
        guard !hasUnterminatedResponse else {
            context.close(promise: nil)
            return
        }
        let body = APIResponse(rejection: .badRequest("the request is not valid HTTP/1.1")).body
        let headers = HTTPHeaders([
            ("connection", "close"), ("content-type", "application/json"), ("content-length", String(body.count)),
        ])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.whenComplete { _ in
            channel.close(mode: .output, promise: nil)
            channel.eventLoop.scheduleTask(in: .milliseconds(Self.lingerMs)) { channel.close(promise: nil) }
        }
    }

    /// Reads after the refusal are dropped (the lingering close drains them).
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        context.fireChannelRead(data)
    }

    /// The client closed its side after a refusal: close ours now.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if refused, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code < 200: break
        case .head: hasUnterminatedResponse = true
        case .body: break
        case .end: hasUnterminatedResponse = false
        }
        context.write(data, promise: promise)
    }
}
