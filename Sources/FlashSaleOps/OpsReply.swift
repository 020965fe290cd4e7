import FlashSale
import InventoryActor
import NIOCore

/// One answer of the ops protocol; the only place where reply bytes are made.
public enum OpsReply: Sendable, Equatable {
    /// `OK` or `OK <text>`.
    case ok(String? = nil)
    /// `OK`, one line per entry, `END` (listing commands).
    case list([String])
    /// `ERR <code> <text>`.
    case error(code: String, text: String)
    /// A line pushed by `WATCH`.
    case push(String)
    /// Nothing (an empty line gets no answer).
    case none

    /// The reply for an engine rejection: its contract code and message.
    init(_ rejection: Rejection) {
        self = .error(code: rejection.code, text: rejection.message)
    }

    /// The wire form, every line ending in `\n`. Text that came from elsewhere is kept on one
    /// line (a stray line end would let a value forge a reply).
    public var text: String {
        switch self {
        case .ok(nil): return "OK\n"
        case .ok(let text?): return "OK \(Self.oneLine(text))\n"
        case .list(let lines):
            var out = "OK\n"
            for line in lines { out += Self.oneLine(line) + "\n" }
            return out + "END\n"
        case .error(let code, let text): return "ERR \(code) \(Self.oneLine(text))\n"
        case .push(let line): return Self.oneLine(line) + "\n"
        case .none: return ""
        }
    }

    /// The wire form in a buffer.
    func buffer(_ allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(string: text)
    }

    private static func oneLine(_ text: String) -> String {
        // By scalar: "\r\n" is one `Character`, equal to neither "\r" nor "\n".
        let isLineEnd: (Unicode.Scalar) -> Bool = { $0 == "\n" || $0 == "\r" }
        guard text.unicodeScalars.contains(where: isLineEnd) else { return text }
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { scalars.append(isLineEnd(scalar) ? " " : scalar) }
        return String(scalars)
    }

    // MARK: Shared line shapes

    /// `sku=S total=N available=N reserved=N sold=N`
    /// `text` as one `key=value` value: no spaces or control characters (each becomes `_`),
    /// at most 200 bytes.
    static func word(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(200).map { $0.value <= 0x20 || $0.value == 0x7f ? "_" : $0 }))
    }

    static func stock(sku: String, _ counters: StockCounters) -> String {
        "sku=\(sku) \(counters)"
    }

    /// `stock sku=S available=N reserved=N sold=N` (the contract's `WATCH` line).
    static func watchLine(sku: String, _ counters: StockCounters) -> String {
        "stock sku=\(sku) available=\(counters.available) reserved=\(counters.reserved) sold=\(counters.sold)"
    }

    /// `order=.. user=.. sku=.. qty=.. status=.. amount=.. event=..`
    static func order(_ order: Order) -> String {
        "order=\(order.id) user=\(order.user) sku=\(order.key.sku) qty=\(order.qty) status=\(order.status) amount=\(order.amountFen) event=\(order.key.event)"
    }
}
