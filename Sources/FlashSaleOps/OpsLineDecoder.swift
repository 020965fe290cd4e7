import FlashSale
import NIOCore

/// What the line decoder makes of the bytes: a line, a line it refuses, or the end of the road.
public enum OpsFrame: Sendable, Equatable {
    /// A complete line of valid UTF-8 without NUL, terminator removed.
    case line(String)
    /// A complete line that is not text (NUL byte or invalid UTF-8): answered with an `ERR`.
    case malformed(String)
    /// More than `OpsLimits.opsLineBytesMax` bytes without a line end: answered, then closed.
    case tooLong
}

/// Bytes to lines, with a limit: `\n` or `\r\n` ends a line; a line longer than
/// `lineBytesMax` (terminator excluded) yields `.tooLong` once and the rest of the stream is
/// discarded, since where the next line starts can no longer be known.
///
/// It only frames: what a line means is the command table's business.
public struct OpsLineDecoder: ByteToMessageDecoder {
    /// Decoded frames.
    public typealias InboundOut = OpsFrame

    let lineBytesMax: Int
    private var failed = false
    /// Bytes already searched for `\n` in the current buffer: a slow trickle is scanned once.
    private var scanned = 0

    /// A decoder refusing lines over `lineBytesMax` bytes.
    public init(lineBytesMax: Int = OpsLimits.opsLineBytesMax) {
        self.lineBytesMax = lineBytesMax
    }

    /// Emits one frame if the buffer holds a line (or proof of an over-long one).
    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = next(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return failed ? .needMoreData : .continue
    }

    /// At end of input an unterminated last line is still a line (`printf 'PING' | nc -N`).
    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if let frame = next(&buffer) {
            context.fireChannelRead(wrapInboundOut(frame))
            return failed ? .needMoreData : .continue
        }
        if !failed, seenEOF, buffer.readableBytes > 0 {
            let bytes = buffer.readBytes(length: buffer.readableBytes)!
            scanned = 0
            context.fireChannelRead(wrapInboundOut(Self.frame(bytes[...])))
        }
        return .needMoreData
    }

    /// The next frame in `buffer`, consuming it; nil when more bytes are needed. Pure framing,
    /// separate from NIO's plumbing so it is tested byte by byte.
    public mutating func next(_ buffer: inout ByteBuffer) -> OpsFrame? {
        if failed {
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return nil
        }
        let readable = buffer.readableBytesView
        // A line of lineBytesMax bytes plus "\r\n" fits in lineBytesMax + 2.
        let window = readable.prefix(lineBytesMax + 2)
        if let newline = window.dropFirst(scanned).firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - readable.startIndex
            var line = readable[readable.startIndex..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            let frame: OpsFrame = line.count > lineBytesMax ? .tooLong : Self.frame(line)
            buffer.moveReaderIndex(forwardBy: length + 1)
            scanned = 0
            if frame == .tooLong { failed = true }
            return frame
        }
        scanned = window.count
        if readable.count > lineBytesMax + 1 {
            // No line end within a full line and its "\r": too long whatever comes next.
            failed = true
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .tooLong
        }
        return nil
    }

    /// A line's bytes as a frame: text, or the reason it is not.
    static func frame(_ bytes: ByteBufferView.SubSequence) -> OpsFrame {
        if bytes.contains(0) { return .malformed("NUL byte in line") }
        guard let text = String(validating: bytes, as: UTF8.self) else { return .malformed("line is not valid UTF-8") }
        return .line(text)
    }

    static func frame(_ bytes: ArraySlice<UInt8>) -> OpsFrame {
        if bytes.contains(0) { return .malformed("NUL byte in line") }
        guard let text = String(validating: bytes, as: UTF8.self) else { return .malformed("line is not valid UTF-8") }
        return .line(text)
    }
}
