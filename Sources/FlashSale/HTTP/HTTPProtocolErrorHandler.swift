import NIOCore
import NIOHTTP1

/// Answers a request the HTTP decoder cannot parse (bad request line, bad header bytes,
/// conflicting lengths) with the contract's `400 {"error":"bad_request","message":...}`, then
/// closes the connection once the answer is written (a head over the limits included).
///
/// NIO's own `HTTPServerProtocolErrorHandler` does the same with an empty body, which breaks
/// the contract's "every error is a JSON object". Like NIO's, it tracks whether a response is
/// already on the wire so it never interleaves a second head into one.
final class HTTPProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var hasUnterminatedResponse = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // The stream cannot be framed any more: answer 400 (unless a response is half sent),
        // then close, as the `connection: close` says. Nothing more is read from it.
        let channel = context.channel
        if !hasUnterminatedResponse {
            let body = APIResponse(rejection: .badRequest("the request is not valid HTTP/1.1")).body
            let headers = HTTPHeaders([
                ("connection", "close"), ("content-type", "application/json"), ("content-length", String(body.count)),
            ])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
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
