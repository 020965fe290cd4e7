import Foundation
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP

/// A client that sends and never reads cannot grow the daemon's memory (contract: nothing a
/// client sends may grow memory without bound): the server stops reading while its socket
/// takes no more writes, so such a client stalls itself. Before, the server read on and
/// buffered every answer it could not send (here: 6.8 MB of pipelined requests read, their
/// answers held in the connection's outbound buffer, until the 10 s request deadline reset
/// the connection).
@Suite struct BackPressureTests {
    static let nowMs: Int64 = 1_795_000_000_000

    /// How a flood ended.
    enum FloodEnd: Equatable {
        /// No byte went out for the stall time: the server stopped reading.
        case stalled
        /// The server closed or reset the connection.
        case closed(String)
        /// Everything went out.
        case limit
    }

    /// Sends `request` over and over on a socket with a small receive buffer, never reading,
    /// until `limit` bytes are out, the server closes, or none goes out for `stallMs`.
    static func flood(port: Int, request: String, limit: Int, stallMs: Int32) -> (sent: Int, end: FloodEnd) {
        let fd = RawSocket.connect(port: port, receiveBufferBytes: 4096)
        guard fd >= 0 else { return (0, .closed("connect failed")) }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        let chunk = Array(String(repeating: request, count: 256).utf8)
        var sent = 0
        var offset = 0
        while sent < limit {
            let written = chunk[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written > 0 {
                sent += written
                offset = (offset + written) % chunk.count
                continue
            }
            guard written < 0, errno == EAGAIN || errno == EWOULDBLOCK else { return (sent, .closed(String(cString: strerror(errno)))) }
            var ready = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&ready, 1, stallMs) == 0 { return (sent, .stalled) }
        }
        return (sent, .limit)
    }

    @Test(.timeLimit(.minutes(2))) func pipelinedRequestsFromAClientThatNeverReadsStallTheClientNotTheServer() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let world = try await TestEngine.start(
            config: makeTestConfig(dataDirectory: directory.path, nowMs: Self.nowMs), clock: ManualClock(startMs: Self.nowMs))
        let server = HTTPServer(responder: world.api, logger: TestEngine.logger)
        let port = try await server.start(host: "127.0.0.1", port: 0)
        let limit = 64 << 20
        let (sent, end) = await RawSocket.offPool { Self.flood(port: port, request: RawSocket.get("/healthz"), limit: limit, stallMs: 5_000) }
        // The server stops reading for good (it does not read on slowly, piling up answers,
        // until a deadline drops the connection): what the socket buffers on both sides hold,
        // megabytes, and then nothing.
        #expect(end == .stalled, "after \(sent >> 10) KiB: \(end)")
        #expect(sent > 0 && sent < 32 << 20, "the server read \(sent >> 20) MiB from a client that reads nothing")
        // Everyone else is still served.
        let health = await RawSocket.requestOffPool(port: port, RawSocket.get("/healthz"))
        #expect(RawSocket.status(health.response) == 200)
        await server.shutdown()
        await world.stop()
    }
}
