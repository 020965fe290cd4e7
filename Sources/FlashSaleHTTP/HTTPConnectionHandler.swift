import FlashSale
import NIOCore
import NIOHTTP1

/// One connection's HTTP/1.1 exchange after NIO's request decoder: assembles each request (head,
/// body up to the limit), answers requests strictly in arrival order (pipelining), and writes
/// each answer as one buffer, status line, headers and body together.
///
/// It stands in for NIO's response encoder, pipelining handler and protocol-error handler,
/// which cost three more handlers on every write and, while an answer waits for the journal,
/// an epoll re-registration per request (the pipelining handler stops reading until the answer
/// is out). Here reading stops only when `pipelinedRequestsMax` requests are queued behind the
/// one being answered.
///
/// - A request the decoder cannot parse is answered with the contract's JSON
///   `400 bad_request` (after every answer before it) and the connection is closed lingering:
///   our side is shut for writing, what the client still sends is drained until it closes too
///   or `lingerMs` passes, so the answer is not lost to a reset of unread bytes.
/// - An answer saying `connection: close` (the client asked for it, HTTP/1.0 without
///   keep-alive, a probe connection) closes the connection once it is written; requests
///   pipelined behind it are not answered.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long a refused connection is drained before it is closed, ms.
    static let lingerMs: Int64 = 2_000
    /// Most complete requests queued behind the one being answered before reading stops.
    static let pipelinedRequestsMax = 16
    /// Most requests queued at all, requests: reading stops at `pipelinedRequestsMax`, but the
    /// bytes of one read (up to about 1 MB) may still hold thousands of tiny pipelined
    /// requests; past this the connection is closed rather than queue them all.
    static let queuedRequestsMax = 256

    /// A request read in full, or the refusal of an unparsable stream, waiting its turn.
    private enum Pending {
        case request(HTTPRequestHead, body: [UInt8], tooLarge: Bool)
        case refusal
    }

    private let server: HTTPServer
    /// A probe-reserve connection: one request, probes only, then closed.
    private let probeOnly: Bool
    private var peerIP = "0.0.0.0"
    /// `peerIP` parsed, once per connection.
    private var peer: ClientAddress?
    // The request being read.
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var bodyTooLarge = false
    /// Requests read and not yet answered, in order; the first is being answered when `answering`.
    private var queue = CircularBuffer<Pending>(initialCapacity: 2)
    private var answering = false
    /// Inside `answerNext`'s loop (an answer given synchronously must not start a nested one).
    private var dispatching = false
    /// A `read()` held back because the queue is full.
    private var readHeld = false
    /// Nothing more is read or answered: an answer said `connection: close`, or the stream was refused.
    private var closing = false
    /// The client closed its side; close ours once the queue is answered.
    private var inputClosed = false

    init(server: HTTPServer, probeOnly: Bool = false) {
        self.server = server
        self.probeOnly = probeOnly
    }

    func handlerAdded(context: ChannelHandlerContext) {
        peerIP = context.channel.remoteAddress?.ipAddress ?? "0.0.0.0"
        peer = ClientAddress(peerIP)
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.removeAll(keepingCapacity: true)
            bodyTooLarge = false
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > HTTPLimits.bodyBytesMax {
                bodyTooLarge = true
            }
        case .body(let chunk):
            guard !bodyTooLarge else { return }
            if body.count + chunk.readableBytes > HTTPLimits.bodyBytesMax {
                bodyTooLarge = true
                body.removeAll()
                return
            }
            body.append(contentsOf: chunk.readableBytesView)
        case .end:
            context.triggerUserOutboundEvent(ReadDeadlineEvent.requestComplete, promise: nil)
            guard let head else { return }
            self.head = nil
            guard queue.count < Self.queuedRequestsMax else {
                // A flood of pipelined requests in one read: drop the connection, not the memory.
                closing = true
                queue.removeAll()
                context.close(promise: nil)
                return
            }
            queue.append(.request(head, body: body, tooLarge: bodyTooLarge))
            answerNext(context: context)
        }
    }

    /// Holds reading back while the queue is full: a client pipelining faster than it is
    /// answered waits in its own socket buffer.
    func read(context: ChannelHandlerContext) {
        if queue.count > Self.pipelinedRequestsMax {
            readHeld = true
        } else {
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // Once: the decoder refuses everything after its first error.
        guard !closing else { return }
        closing = true
        queue.append(.refusal)
        answerNext(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            if !answering && queue.isEmpty { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Answering

    /// Starts answering queued requests, in order, until one is pending (or none is left).
    private func answerNext(context: ChannelHandlerContext) {
        guard !dispatching else { return }
        dispatching = true
        defer { dispatching = false }
        while !answering, let next = queue.first {
            answering = true
            switch next {
            case .refusal: refuse(context: context)
            case .request(let head, let body, let tooLarge): dispatch(head: head, body: body, tooLarge: tooLarge, context: context)
            }
        }
        if readHeld && queue.count <= Self.pipelinedRequestsMax {
            readHeld = false
            context.read()
        }
    }

    private func dispatch(head: HTTPRequestHead, body: [UInt8], tooLarge: Bool, context: ChannelHandlerContext) {
        let keepAlive = head.isKeepAlive && !probeOnly
        let version = head.version
        let isHead = head.method == .HEAD
        let answer = { (response: APIResponse, keepAlive: Bool) in
            self.finish(response, version: version, keepAlive: keepAlive, omitBody: isHead, context: context)
        }
        if tooLarge {
            answer(APIResponse(rejection: .tooLarge), keepAlive)
            return
        }
        var path = head.uri[...]
        var query: Substring = ""
        if let mark = path.firstIndex(of: "?") {
            query = path[path.index(after: mark)...]
            path = path[..<mark]
        }
        var request = APIRequest(method: head.method.rawValue, path: String(path), clientIP: peerIP, body: body)
        request.query = String(query)
        request.peer = peer
        if let repeated = Self.readHeaders(head.headers, into: &request) {
            // Two values for a header that names one thing: which one a proxy saw is unknowable.
            answer(APIResponse(rejection: .badRequest("header \(repeated) given more than once")), keepAlive)
            return
        }
        let responder = server.responderForHandler
        if let immediate = responder.respondImmediately(to: request) {
            answer(immediate, keepAlive)
            return
        }
        guard !probeOnly || responder.isProbe(request) else {
            // A reserve slot is for probes; a buyer waits for a client slot like any other.
            answer(APIResponse(rejection: .overloaded(retryAfterSeconds: HTTPLimits.overloadedRetryAfterSeconds)), false)
            return
        }
        guard server.tryBegin() else {
            answer(APIResponse(rejection: .overloaded(retryAfterSeconds: HTTPLimits.overloadedRetryAfterSeconds)), keepAlive)
            return
        }
        let server = self.server
        // On the loop, without a task, when the responder can (the hot path).
        let onLoop = responder.respond(to: request, on: context.eventLoop) { response in
            server.end()
            answer(response, keepAlive)
        }
        if onLoop { return }
        let promise = context.eventLoop.makePromise(of: APIResponse.self)
        promise.completeWithTask { [request] in await responder.respond(to: request) }
        let bound = NIOLoopBound(answer, eventLoop: context.eventLoop)
        promise.futureResult.whenSuccess { response in
            server.end()
            bound.value(response, keepAlive)
        }
    }

    /// Writes the answer to the request at the head of the queue, then goes on with the next.
    private func finish(_ response: APIResponse, version: HTTPVersion, keepAlive: Bool, omitBody: Bool, context: ChannelHandlerContext) {
        precondition(answering, "an answer with no request being answered")
        _ = queue.popFirst()
        answering = false
        var buffer = context.channel.allocator.buffer(capacity: 160 + response.body.count)
        Self.encode(response, version: version, keepAlive: keepAlive, omitBody: omitBody, into: &buffer)
        context.triggerUserOutboundEvent(ReadDeadlineEvent.responseSent, promise: nil)
        guard keepAlive else {
            // Close once the answer is out; nothing queued behind it is answered.
            closing = true
            queue.removeAll()
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        if !context.channel.isWritable,
            let buffered = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes), buffered > HTTPLimits.outboundBytesMax
        {
            // Answers pile up for a client that does not read them: past the cap it is dropped.
            context.close(promise: nil)
            return
        }
        if inputClosed && queue.isEmpty {
            context.close(promise: nil)
            return
        }
        answerNext(context: context)
    }

    /// The contract's JSON 400 for an unparsable stream, then a lingering close.
    private func refuse(context: ChannelHandlerContext) {
        _ = queue.popFirst()
        queue.removeAll()
        var buffer = context.channel.allocator.buffer(capacity: 256)
        Self.encode(
            APIResponse(rejection: .badRequest("the request is not valid HTTP/1.1")), version: .http1_1, keepAlive: false, omitBody: false,
            into: &buffer)
        let channel = context.channel
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in
            if handler.value.inputClosed {
                channel.close(promise: nil)
                return
            }
            channel.close(mode: .output, promise: nil)
            channel.eventLoop.scheduleTask(in: .milliseconds(Self.lingerMs)) { channel.close(promise: nil) }
        }
    }

    // MARK: Encoding

    /// `response` as HTTP/1.x bytes: status line, headers, blank line, body (none for `HEAD`).
    static func encode(_ response: APIResponse, version: HTTPVersion, keepAlive: Bool, omitBody: Bool, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(version.minor == 0 && version.major == 1 ? "HTTP/1.0 " : "HTTP/1.1 ")
        let status = HTTPResponseStatus(statusCode: response.status)
        buffer.writeString(String(response.status))
        buffer.writeStaticString(" ")
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\ncontent-type: ")
        buffer.writeString(response.contentType)
        buffer.writeStaticString("\r\ncontent-length: ")
        buffer.writeString(String(response.body.count))
        if let seconds = response.retryAfterSeconds {
            buffer.writeStaticString("\r\nretry-after: ")
            buffer.writeString(String(seconds))
        }
        if let allow = response.allow {
            buffer.writeStaticString("\r\nallow: ")
            buffer.writeString(allow)
        }
        if let cacheControl = response.cacheControl {
            buffer.writeStaticString("\r\ncache-control: ")
            buffer.writeString(cacheControl)
        }
        if !keepAlive {
            buffer.writeStaticString("\r\nconnection: close")
        } else if version.major == 1 && version.minor == 0 {
            buffer.writeStaticString("\r\nconnection: keep-alive")
        }
        buffer.writeStaticString("\r\n\r\n")
        if !omitBody { buffer.writeBytes(response.body) }
    }

    // MARK: Headers

    /// The headers the API reads, lower case; all but `x-forwarded-for` (a list of hops)
    /// must appear at most once: a second value is `400 bad_request`.
    /// (Key paths are immutable values, just not marked `Sendable`.)
    nonisolated(unsafe) private static let readHeaderFields: [(name: String, field: WritableKeyPath<APIRequest, String?>?)] = [
        ("authorization", \.authorization), ("idempotency-key", \.idempotencyKey), ("x-pay-timestamp", \.payTimestamp),
        ("x-pay-nonce", \.payNonce), ("x-pay-signature", \.paySignature), ("x-forwarded-for", nil),
    ]

    /// Copies the headers the API reads into `request`, in one pass over them (names compared
    /// without case, without allocating); returns the name of a singleton header given twice.
    static func readHeaders(_ headers: HTTPHeaders, into request: inout APIRequest) -> String? {
        for (name, value) in headers {
            guard let known = readHeaderFields.first(where: { isASCIICaseInsensitiveEqual(name, $0.name) }) else { continue }
            guard let field = known.field else {
                request.forwardedFor.append(value)
                continue
            }
            guard request[keyPath: field] == nil else { return known.name }
            request[keyPath: field] = value
        }
        return nil
    }

    /// `name` equals `lowercase` once its ASCII capitals are lowered.
    private static func isASCIICaseInsensitiveEqual(_ name: String, _ lowercase: String) -> Bool {
        name.utf8.count == lowercase.utf8.count
            && name.utf8.elementsEqual(lowercase.utf8) { ((0x41...0x5A).contains($0) ? $0 | 0x20 : $0) == $1 }
    }
}
