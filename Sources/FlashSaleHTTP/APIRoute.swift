/// The daemon's HTTP routes, in one table that dispatch, `405 Allow` and the metrics labels all
/// read: a path is matched once per request, in one pass over its bytes.
public struct APIRoute: Sendable, Equatable {
    /// A route's path template. Each has exactly one method.
    public enum Template: Int, CaseIterable, Sendable {
        case healthz, readyz, metrics
        case events, event, eventOrders, eventGroups
        case order, orderCancel
        case group, groupJoin
        case couponClaims
        case paymentNotify
        case adminChanges, adminOrders
        case adminEvents, adminEvent, adminEventPause, adminEventResume, adminRestock, adminCoupons
        case openAPI

        /// The one method the route answers.
        public var method: String {
            switch self {
            case .healthz, .readyz, .metrics, .events, .event, .order, .group, .adminChanges, .adminOrders, .openAPI: "GET"
            case .adminEvent: "PATCH"
            case .eventOrders, .eventGroups, .orderCancel, .groupJoin, .couponClaims, .paymentNotify, .adminEvents,
                .adminEventPause, .adminEventResume, .adminRestock, .adminCoupons:
                "POST"
            }
        }

        /// The path template: ids never appear in it, so it is a bounded metrics label.
        public var path: String {
            switch self {
            case .healthz: "/healthz"
            case .readyz: "/readyz"
            case .metrics: "/metrics"
            case .events: "/v1/events"
            case .event: "/v1/events/{event}"
            case .eventOrders: "/v1/events/{event}/orders"
            case .eventGroups: "/v1/events/{event}/groups"
            case .order: "/v1/orders/{order}"
            case .orderCancel: "/v1/orders/{order}/cancel"
            case .group: "/v1/groups/{group}"
            case .groupJoin: "/v1/groups/{group}/join"
            case .couponClaims: "/v1/coupons/{batch}/claims"
            case .paymentNotify: "/v1/payments/notify"
            case .adminChanges: "/v1/admin/changes"
            case .adminOrders: "/v1/admin/orders"
            case .adminEvents: "/v1/admin/events"
            case .adminEvent: "/v1/admin/events/{event}"
            case .adminCoupons: "/v1/admin/coupons"
            case .adminEventPause: "/v1/admin/events/{event}/pause"
            case .adminEventResume: "/v1/admin/events/{event}/resume"
            case .adminRestock: "/v1/admin/events/{event}/items/{sku}/restock"
            case .openAPI: "/openapi.yaml"
            }
        }

        /// `METHOD /template`: the route's label in metrics and logs.
        public var label: String { method + " " + path }
    }

    /// The matched template; nil: no route has this path (`404 not_found`).
    public let template: Template?
    /// The path's id segment (`{event}`, `{order}`, ...), empty for routes without one.
    public let parameter: Substring
    /// A second id segment (`{sku}` of a restock), empty for routes without one.
    public let secondParameter: Substring

    /// The route of `path` (without its query string).
    public init(path: String) {
        let (matched, parameter) = Self.match(path)
        if matched == nil, let (admin, event, sku) = Self.matchAdmin(path) {
            (template, self.parameter, secondParameter) = (admin, event, sku)
        } else {
            (template, self.parameter, secondParameter) = (matched, parameter, "")
        }
    }

    /// The admin writes under `/v1/admin/events/{event}/...`, longer than the buyer routes:
    /// matched apart, by splitting the path (they are rare; the buyer routes stay one pass).
    private static func matchAdmin(_ path: String) -> (Template, Substring, Substring)? {
        guard path.hasPrefix("/v1/admin/events/") else { return nil }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard segments.allSatisfy({ !$0.isEmpty }) else { return nil }
        let parts = Array(segments)
        switch parts.count {
        case 4: return (.adminEvent, parts[3], "")
        case 5 where parts[4] == "pause": return (.adminEventPause, parts[3], "")
        case 5 where parts[4] == "resume": return (.adminEventResume, parts[3], "")
        case 7 where parts[4] == "items" && parts[6] == "restock": return (.adminRestock, parts[3], parts[5])
        default: return nil
        }
    }

    /// The route of `method` on this path: `.allowed` when the template takes it.
    public func check(method: String) -> MethodCheck {
        guard let template else { return .notFound }
        return template.method == method ? .allowed(template) : .notAllowed(allow: template.method)
    }

    /// What `check(method:)` found.
    public enum MethodCheck: Equatable, Sendable {
        /// The route answers this method.
        case allowed(Template)
        /// The path is a route, the method is not its own: `405` with `Allow`.
        case notAllowed(allow: String)
        /// No such path: `404 not_found`.
        case notFound
    }

    /// The metrics label of `method` on this path: the template's label, or `other` for an
    /// unknown path or a method the route does not take (methods are free text: never a label).
    public func label(method: String) -> String {
        guard let template, template.method == method else { return "other" }
        return template.label
    }

    private static func match(_ path: String) -> (Template?, Substring) {
        var path = path
        let found = path.withUTF8 { bytes in matchBytes(bytes) }
        guard let (template, parameter) = found else { return (nil, "") }
        let utf8 = path.utf8
        let start = utf8.index(utf8.startIndex, offsetBy: parameter.lowerBound)
        let end = utf8.index(utf8.startIndex, offsetBy: parameter.upperBound)
        return (template, path[start..<end])
    }

    /// The template and the byte range of its parameter, matched over the path's bytes: split
    /// at "/" into at most four non-empty segments after the leading one.
    private static func matchBytes(_ bytes: UnsafeBufferPointer<UInt8>) -> (Template, Range<Int>)? {
        guard bytes.first == UInt8(ascii: "/") else { return nil }
        var segments: (Range<Int>, Range<Int>, Range<Int>, Range<Int>) = (0..<0, 0..<0, 0..<0, 0..<0)
        var count = 0
        var start = 1
        var index = 1
        while index <= bytes.count {
            if index == bytes.count || bytes[index] == UInt8(ascii: "/") {
                guard index > start, count < 4 else { return nil }
                switch count {
                case 0: segments.0 = start..<index
                case 1: segments.1 = start..<index
                case 2: segments.2 = start..<index
                default: segments.3 = start..<index
                }
                count += 1
                start = index + 1
            }
            index += 1
        }
        func segment(_ range: Range<Int>, is word: StaticString) -> Bool {
            range.count == word.utf8CodeUnitCount
                && UnsafeBufferPointer(rebasing: bytes[range]).elementsEqual(UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount))
        }
        switch count {
        case 1:
            if segment(segments.0, is: "healthz") { return (.healthz, 0..<0) }
            if segment(segments.0, is: "readyz") { return (.readyz, 0..<0) }
            if segment(segments.0, is: "metrics") { return (.metrics, 0..<0) }
            if segment(segments.0, is: "openapi.yaml") { return (.openAPI, 0..<0) }
            return nil
        case 2:
            return segment(segments.0, is: "v1") && segment(segments.1, is: "events") ? (.events, 0..<0) : nil
        case 3:
            guard segment(segments.0, is: "v1") else { return nil }
            if segment(segments.1, is: "events") { return (.event, segments.2) }
            if segment(segments.1, is: "orders") { return (.order, segments.2) }
            if segment(segments.1, is: "groups") { return (.group, segments.2) }
            if segment(segments.1, is: "payments") && segment(segments.2, is: "notify") { return (.paymentNotify, 0..<0) }
            if segment(segments.1, is: "admin") && segment(segments.2, is: "changes") { return (.adminChanges, 0..<0) }
            if segment(segments.1, is: "admin") && segment(segments.2, is: "orders") { return (.adminOrders, 0..<0) }
            if segment(segments.1, is: "admin") && segment(segments.2, is: "events") { return (.adminEvents, 0..<0) }
            if segment(segments.1, is: "admin") && segment(segments.2, is: "coupons") { return (.adminCoupons, 0..<0) }
            return nil
        default:
            guard segment(segments.0, is: "v1") else { return nil }
            let (kind, action) = (segments.1, segments.3)
            if segment(kind, is: "events") && segment(action, is: "orders") { return (.eventOrders, segments.2) }
            if segment(kind, is: "events") && segment(action, is: "groups") { return (.eventGroups, segments.2) }
            if segment(kind, is: "orders") && segment(action, is: "cancel") { return (.orderCancel, segments.2) }
            if segment(kind, is: "groups") && segment(action, is: "join") { return (.groupJoin, segments.2) }
            if segment(kind, is: "coupons") && segment(action, is: "claims") { return (.couponClaims, segments.2) }
            return nil
        }
    }
}
