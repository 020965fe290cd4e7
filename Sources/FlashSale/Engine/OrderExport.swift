import Foundation
import FlashSaleJournal
import InventoryActor

/// `flashsaled export`: every order of a data directory (a stopped daemon's, or a running
/// one's: the read takes no lock the daemon needs), for finance reconciliation.
public enum OrderExport {
    /// The output formats.
    public enum Format: String, CaseIterable, Sendable {
        /// A header line, then one order per line; refunds joined by `;`.
        case csv
        /// One JSON object per line: the order as the change feed sends it, plus `refunds`.
        case ndjson
    }

    /// The CSV header.
    public static let csvColumns = [
        "order", "event", "sku", "user", "qty", "status", "amount", "discount", "created_at", "expires_at",
        "transaction", "group", "coupon", "refunds",
    ]

    /// Orders read per page.
    static let pageSize = 1_000

    /// Milliseconds of an RFC 3339 time (`2026-12-06T20:00:00+08:00`) or a UTC date (`2026-12-06`).
    public static func time(_ text: String) -> Int64? {
        if let ms = RFC3339.milliseconds(text) { return ms }
        return RFC3339.milliseconds(text + "T00:00:00Z")
    }

    /// Writes the orders of `directory` (of `event`, created at or after `sinceMs`, if given),
    /// in id order, as `format`, one line at a time to `write`; returns how many.
    @discardableResult
    public static func run(
        directory: String, event: String?, sinceMs: Int64?, format: Format, write: (String) -> Void
    ) throws -> Int {
        let reader = JournalReader(directory: directory)
        if format == .csv { write(csvColumns.joined(separator: ",")) }
        var after: OrderID?
        var count = 0
        while true {
            let page = try reader.orders(event: event, status: nil, sinceMs: sinceMs ?? .min, after: after, limit: pageSize)
            for row in page {
                write(format == .csv ? csvLine(row) : jsonLine(row))
            }
            count += page.count
            guard page.count == pageSize, let last = page.last else { return count }
            after = last.order.id
        }
    }

    static func csvLine(_ row: StoredOrder) -> String {
        let order = row.order
        let fields: [String] = [
            order.id.description, order.key.event, order.key.sku, order.user, String(order.qty), order.status.description,
            String(order.amountFen), String(order.discountFen), rfc3339(ms: order.createdAtMs), rfc3339(ms: order.expiresAtMs),
            order.transaction ?? "", order.group?.description ?? "", order.coupon ?? "", row.refunds.joined(separator: ";"),
        ]
        return fields.map(csvField).joined(separator: ",")
    }

    /// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. A
    /// field a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`.
    static func csvField(_ text: String) -> String {
        var text = text
        if let first = text.first, "=+-@".contains(first) { text = "'" + text }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func jsonLine(_ row: StoredOrder) -> String {
        let bytes = JSONWriter.object { json in
            json.rawField("order", json: ChangeFeedJSON.order(row.order))
            json.array("refunds") { json in for refund in row.refunds { json.element(refund) } }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
