import Foundation
import Yams

/// An event created through the admin API (§7): its concrete days, and the template
/// they come from when it has a weekly `schedule`.
public struct AdminEventDefinition: Sendable, Equatable {
    /// The id in the request (a schedule's days are `<id>-YYYYMMDD`).
    public var id: String
    /// The concrete events: one, or a schedule's days within its horizon.
    public var events: [EventConfig]
    /// The schedule, if it has one.
    public var recurring: RecurringEvent?
}

extension SaleConfig {
    /// What the admin API's errors name as their source.
    public static let requestBodySource = "request body"

    /// Checks an `events[]` entry sent as JSON to `POST /v1/admin/events` by the same code, and
    /// so the same rules, as the config file's `events` (one validator, two front doors): times
    /// relative to `nowMs`, a schedule in `timeZoneIdentifier`. An error names the field as a
    /// path within the body (`items[0].price`).
    public static func parseAdminEvent(
        json: [UInt8], timeZoneIdentifier: String, nowMs: Int64
    ) throws(ConfigError) -> AdminEventDefinition {
        guard let timeZone = TimeZone(identifier: timeZoneIdentifier) else {
            preconditionFailure("time zone \(timeZoneIdentifier) was checked")
        }
        return try decodeOneEntry(json: json, list: "events", what: "one event", nowMs: nowMs) { (root) throws(ConfigError) in
            let (events, recurring) = try decodeEvents(root, timeZone: timeZone)
            let id = recurring.first?.id ?? events.first?.id ?? ""
            return AdminEventDefinition(id: id, events: events, recurring: recurring.first)
        }
    }

    /// Decodes `json`, one entry of the file's list `list`, with the file's own decoder of that
    /// list (`decode`, given a root holding just this entry); errors name the field as a path
    /// within the body, not within the file's list.
    private static func decodeOneEntry<Entry>(
        json: [UInt8], list: String, what: String, nowMs: Int64, _ decode: (ConfigMapping) throws(ConfigError) -> Entry
    ) throws(ConfigError) -> Entry {
        // Strict JSON first: the decoder reads YAML, of which JSON is a part.
        guard (try? JSONParser.parse(json)) != nil else {
            throw ConfigError(source: requestBodySource, key: "", problem: "body is not valid JSON: send \(what) as a JSON object")
        }
        let context = ConfigContext(source: requestBodySource, environment: [:], nowMs: nowMs)
        let node = try compose(String(decoding: json, as: UTF8.self), context: context)
        guard let node, node.mapping != nil else {
            throw ConfigError(source: requestBodySource, key: "", problem: "expected a JSON object: \(what)")
        }
        let root = try context.root(.mapping(Node.Mapping([(Node(list), .sequence(Node.Sequence([node])))])), keys: [list])
        do throws(ConfigError) {
            return try decode(root)
        } catch {
            var error = error
            let prefix = "\(list)[0]"
            if error.key.hasPrefix(prefix + ".") {
                error.key.removeFirst(prefix.count + 1)
            } else if error.key == prefix {
                error.key = ""
            }
            throw error
        }
    }
}

extension SaleConfig {
    /// Checks a `coupons[]` entry sent as JSON to `POST /v1/admin/coupons` by the config file's
    /// own rules (times relative to `nowMs`); an error names the field within the body.
    public static func parseAdminCoupon(json: [UInt8], nowMs: Int64) throws(ConfigError) -> CouponBatchConfig {
        try decodeOneEntry(json: json, list: "coupons", what: "one coupon batch", nowMs: nowMs) { (root) throws(ConfigError) in
            guard let batch = try decodeCoupons(root).first else {
                throw ConfigError(source: requestBodySource, key: "", problem: "expected one coupon batch")
            }
            return batch
        }
    }
}
