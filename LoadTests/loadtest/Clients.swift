import FlashSale
import NIOCore
import NIOHTTP1
import NIOPosix

/// A line client for the ops port (§4): one command at a time.
final class OpsClient: @unchecked Sendable {
    private var inbound: NIOAsyncChannelInboundStream<String>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    private init(inbound: NIOAsyncChannelInboundStream<String>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Connects to the ops port and runs `body` on the connection.
    static func with<R: Sendable>(host: String, port: Int, _ body: (OpsClient) async throws -> R) async throws -> R {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder()))
                    return try NIOAsyncChannel<String, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(OpsClient(inbound: inbound.makeAsyncIterator(), outbound: outbound))
        }
    }

    /// Sends `command`; returns the reply lines (for listings, the lines between `OK` and `END`).
    /// Throws on `ERR`.
    func run(_ command: String) async throws -> [String] {
        try await outbound.write(ByteBuffer(string: command + "\n"))
        guard let first = try await inbound.next() else { throw ClientError("ops: connection closed") }
        if first.hasPrefix("ERR") { throw ClientError("ops \(command): \(first)") }
        guard first == "OK" else { return [first] }
        var lines: [String] = []
        while let line = try await inbound.next(), line != "END" { lines.append(line) }
        return lines
    }

    /// `key=value` pairs of one reply line.
    static func fields(_ line: String) -> [String: String] {
        var fields: [String: String] = [:]
        for word in line.split(separator: " ") {
            guard let equals = word.firstIndex(of: "=") else { continue }
            fields[String(word[..<equals])] = String(word[word.index(after: equals)...])
        }
        return fields
    }
}

/// Splits the ops stream into lines (without `\r\n`); a line longer than 64 KiB is an error.
struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = String
    static let lineBytesMax = 65_536

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > Self.lineBytesMax { throw ClientError("ops: line too long") }
            return .needMoreData
        }
        var line = buffer.readString(length: newline - buffer.readerIndex)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.hasSuffix("\r") { line.removeLast() }
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }
}

/// A keep-alive HTTP/1.1 connection for the audit's GETs.
final class AuditHTTP: @unchecked Sendable {
    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>

    private init(
        inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    ) {
        self.inbound = inbound
        self.outbound = outbound
    }

    static func with<R: Sendable>(host: String, port: Int, _ body: (AuditHTTP) async throws -> R) async throws -> R {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(AuditHTTP(inbound: inbound.makeAsyncIterator(), outbound: outbound))
        }
    }

    /// GETs `path`; the status and the body parsed as JSON (null when it is not JSON).
    func get(_ path: String, authorization: String? = nil) async throws -> (status: Int, json: JSONValue) {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "host", value: "flashsale")
        if let authorization { head.headers.add(name: "authorization", value: authorization) }
        try await outbound.write(.head(head))
        try await outbound.write(.end(nil))
        var status = 0
        var body: [UInt8] = []
        while let part = try await inbound.next() {
            switch part {
            case .head(let head): status = Int(head.status.code)
            case .body(let buffer): body += buffer.readableBytesView
            case .end: return (status, (try? JSONParser.parse(body)) ?? .null)
            }
        }
        throw ClientError("http: connection closed")
    }
}

/// A client-side failure with a message for a person.
struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
