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

        /// The one method the route answers.
        public var method: String {
            switch self {
            case .healthz, .readyz, .metrics, .events, .event, .order, .group: "GET"
            case .eventOrders, .eventGroups, .orderCancel, .groupJoin, .couponClaims, .paymentNotify: "POST"
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
            }
        }

        /// `METHOD /template`: the route's label in metrics and logs.
        public var label: String { method + " " + path }
    }

    /// The matched template; nil: no route has this path (`404 not_found`).
    public let template: Template?
    /// The path's id segment (`{event}`, `{order}`, ...), empty for routes without one.
    public let parameter: Substring

    /// The route of `path` (without its query string).
    public init(path: String) {
        (template, parameter) = Self.match(path)
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
        // Segments after the leading "/": at most four are ever a route.
        var segments: [Substring] = []
        segments.reserveCapacity(4)
        guard path.utf8.first == UInt8(ascii: "/") else { return (nil, "") }
        var rest = path.dropFirst()
        while true {
            if segments.count == 4 { return (nil, "") }
            if let slash = rest.utf8.firstIndex(of: UInt8(ascii: "/")) {
                segments.append(rest[..<slash])
                rest = rest[rest.utf8.index(after: slash)...]
            } else {
                segments.append(rest)
                break
            }
        }
        if segments.contains(where: \.isEmpty) { return (nil, "") }
        switch segments.count {
        case 1:
            switch segments[0] {
            case "healthz": return (.healthz, "")
            case "readyz": return (.readyz, "")
            case "metrics": return (.metrics, "")
            default: return (nil, "")
            }
        case 2:
            guard segments[0] == "v1", segments[1] == "events" else { return (nil, "") }
            return (.events, "")
        case 3:
            guard segments[0] == "v1" else { return (nil, "") }
            switch segments[1] {
            case "events": return (.event, segments[2])
            case "orders": return (.order, segments[2])
            case "groups": return (.group, segments[2])
            case "payments" where segments[2] == "notify": return (.paymentNotify, "")
            default: return (nil, "")
            }
        default:
            guard segments[0] == "v1" else { return (nil, "") }
            switch (segments[1], segments[3]) {
            case ("events", "orders"): return (.eventOrders, segments[2])
            case ("events", "groups"): return (.eventGroups, segments[2])
            case ("orders", "cancel"): return (.orderCancel, segments[2])
            case ("groups", "join"): return (.groupJoin, segments[2])
            case ("coupons", "claims"): return (.couponClaims, segments[2])
            default: return (nil, "")
            }
        }
    }
}
