import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import FlashSaleHTTP

/// The connection handler's queue of pipelined requests is bounded even when one read brings
/// more of them than reading can stop (a read holds up to about 1 MB of tiny requests).
@Suite struct PipelineBoundTests {
    /// Takes every request and never answers it: everything read stays queued.
    struct NeverAnswering: HTTPResponder {
        func respondImmediately(to request: APIRequest) -> APIResponse? { nil }
        func respond(to request: APIRequest) async -> APIResponse { APIResponse(status: 200, body: []) }
        func respond(to request: APIRequest, on loop: any EventLoop, reply: @escaping (APIResponse) -> Void) -> Bool { true }
    }

    static func feed(_ count: Int) throws -> EmbeddedChannel {
        let server = HTTPServer(responder: NeverAnswering(), group: EmbeddedEventLoop(), logger: Logger(label: "test"))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: HTTPServer.decoderLimits)),
            HTTPConnectionHandler(server: server),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: String(repeating: "GET /v1/events HTTP/1.1\r\n\r\n", count: count)))
        return channel
    }

    @Test func aReadOfMoreRequestsThanTheQueueTakesClosesTheConnection() throws {
        let within = try Self.feed(HTTPConnectionHandler.queuedRequestsMax)
        #expect(within.isActive, "a queue at its bound is kept")
        let past = try Self.feed(HTTPConnectionHandler.queuedRequestsMax + 1)
        #expect(!past.isActive, "one request past the bound closes the connection")
    }
}
