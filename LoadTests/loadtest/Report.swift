import Foundation

/// The run's report: `report.json` for tools, `report.html` (self-contained, inline SVG) for people.
struct Report: Codable {
    struct EndpointFigures: Codable {
        var endpoint: String
        var count: Int
        var p50Ms: Double
        var p90Ms: Double
        var p99Ms: Double
        var p999Ms: Double
        var maxMs: Double
        var outcomes: [String: Int]
    }

    struct SecondFigures: Codable {
        var second: Int
        var offered: Int
        var achieved: Int
        var p50Ms: Double
        var p99Ms: Double
        var outcomes: [String: Int]
    }

    var scenario: String
    var target: String
    var startedAt: String
    var durationSeconds: Double
    var users: Int
    var sourceAddresses: Int
    var bots: Int
    var arrivalsPlanned: Int
    var requestsSent: Int
    var unanswered: Int
    var connectFailures: Int
    var endpoints: [EndpointFigures]
    var timeline: [SecondFigures]
    /// Available units per item (`event/sku`), sampled once a second.
    var stockAvailable: [String: [Int]]
    var stockTotal: [String: Int]
    var statsBefore: [String: Int]
    var statsAfter: [String: Int]
    var audit: [AuditCheck]
    var auditPassed: Bool

    init(
        scenario path: String, target: String, started: Date, scenarioConfig: Scenario, result: LoadRunResult,
        stock: [String: [Int]], stockTotal: [String: Int], statsBefore: [String: Int], statsAfter: [String: Int],
        audit: [AuditCheck]
    ) {
        func ms(_ us: UInt64) -> Double { (Double(us) / 1000 * 100).rounded() / 100 }
        scenario = path
        self.target = target
        startedAt = ISO8601DateFormatter().string(from: started)
        durationSeconds = scenarioConfig.durationSeconds
        users = scenarioConfig.users
        sourceAddresses = scenarioConfig.sourceIPs
        bots = scenarioConfig.botIPs
        arrivalsPlanned = result.arrivalsPlanned
        requestsSent = result.requestsSent
        unanswered = result.unanswered
        connectFailures = result.connectFailures
        endpoints = Endpoint.allCases.compactMap { endpoint in
            guard let histogram = result.endpointLatency[endpoint], histogram.totalCount > 0 else { return nil }
            return EndpointFigures(
                endpoint: endpoint.rawValue, count: Int(histogram.totalCount), p50Ms: ms(histogram.valueAtPercentile(50)),
                p90Ms: ms(histogram.valueAtPercentile(90)), p99Ms: ms(histogram.valueAtPercentile(99)),
                p999Ms: ms(histogram.valueAtPercentile(99.9)), maxMs: ms(histogram.max),
                outcomes: result.endpointOutcomes[endpoint] ?? [:])
        }
        timeline = result.seconds.enumerated().map { index, second in
            SecondFigures(
                second: index, offered: second.offered, achieved: second.achieved,
                p50Ms: ms(second.p50Us), p99Ms: ms(second.p99Us), outcomes: second.outcomes)
        }
        stockAvailable = stock
        self.stockTotal = stockTotal
        self.statsBefore = statsBefore
        self.statsAfter = statsAfter
        self.audit = audit
        auditPassed = audit.allSatisfy(\.ok)
    }

    /// The summary printed at the end: per-endpoint percentiles and the audit.
    func summaryText() -> String {
        var lines = ["", "endpoint      count      p50      p90      p99    p99.9      max  outcomes"]
        for e in endpoints {
            let outcomes = e.outcomes.sorted { $0.value > $1.value }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.append(
                e.endpoint.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(format: "%9d %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms  ", e.count, e.p50Ms, e.p90Ms, e.p99Ms, e.p999Ms, e.maxMs)
                    + outcomes)
        }
        lines.append(
            "sent \(requestsSent) requests (\(arrivalsPlanned) planned arrivals), unanswered \(unanswered), connect failures \(connectFailures)"
        )
        lines.append("")
        lines.append("audit:")
        for check in audit { lines.append("  \(check.ok ? "ok  " : "FAIL") \(check.name): \(check.detail)") }
        lines.append(auditPassed ? "AUDIT PASSED" : "AUDIT FAILED")
        return lines.joined(separator: "\n")
    }

    func write(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: directory + "/report.json"))
        try Data(html().utf8).write(to: URL(fileURLWithPath: directory + "/report.html"))
    }

    // MARK: HTML

    private static let palette = [
        "#2b6cb0", "#c53030", "#2f855a", "#b7791f", "#6b46c1", "#0987a0", "#d53f8c", "#4a5568", "#dd6b20", "#38a169",
    ]

    func html() -> String {
        let seconds = timeline.map { Double($0.second) }
        let throughput = SVGChart.lines(
            title: "Throughput (requests/s)", x: seconds,
            series: [("offered", timeline.map { Double($0.offered) }), ("achieved", timeline.map { Double($0.achieved) })])
        let latency = SVGChart.lines(
            title: "Latency from intended send time (ms)", x: seconds,
            series: [("p50", timeline.map(\.p50Ms)), ("p99", timeline.map(\.p99Ms))])
        let outcomeNames = Set(timeline.flatMap { $0.outcomes.keys }).sorted()
        let outcomes = SVGChart.stacked(
            title: "Outcomes per second", x: seconds,
            series: outcomeNames.map { name in (name, timeline.map { Double($0.outcomes[name] ?? 0) }) })
        let stockSeries = stockAvailable.sorted { $0.key < $1.key }.map { key, values in (key, values.map(Double.init)) }
        let stock = SVGChart.lines(
            title: "Stock available per item (sampled each second)",
            x: (0..<(stockSeries.map(\.1.count).max() ?? 0)).map(Double.init), series: stockSeries)
        var rows = ""
        for e in endpoints {
            let outcomes = e.outcomes.sorted { $0.value > $1.value }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            rows +=
                "<tr><td>\(e.endpoint)</td><td>\(e.count)</td><td>\(e.p50Ms)</td><td>\(e.p90Ms)</td><td>\(e.p99Ms)</td><td>\(e.p999Ms)</td><td>\(e.maxMs)</td><td>\(escape(outcomes))</td></tr>\n"
        }
        var checks = ""
        for check in audit {
            checks +=
                "<tr class=\"\(check.ok ? "ok" : "fail")\"><td>\(check.ok ? "ok" : "FAIL")</td><td>\(escape(check.name))</td><td>\(escape(check.detail))</td></tr>\n"
        }
        return """
            <!doctype html>
            <html><head><meta charset="utf-8"><title>FlashSale load test: \(escape(scenario))</title>
            <style>
            body { font: 14px system-ui, sans-serif; margin: 2em; color: #1a202c; }
            table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #cbd5e0; padding: 3px 8px; text-align: right; }
            td:first-child, td:last-child { text-align: left; } tr.fail { background: #fed7d7; } tr.ok td:first-child { color: #2f855a; }
            .verdict { font-size: 1.4em; font-weight: bold; color: \(auditPassed ? "#2f855a" : "#c53030"); }
            svg { display: block; margin: 1em 0; }
            </style></head><body>
            <h1>FlashSale load test</h1>
            <p>Scenario <code>\(escape(scenario))</code> against <code>\(escape(target))</code>, started \(startedAt):
            \(arrivalsPlanned) arrivals planned over \(durationSeconds) s (open loop), \(requestsSent) requests sent,
            \(unanswered) unanswered; \(users) users on \(sourceAddresses) source addresses, \(bots) bots.</p>
            <p class="verdict">Audit \(auditPassed ? "passed" : "FAILED")</p>
            \(throughput)
            \(latency)
            \(outcomes)
            \(stock)
            <h2>Latency per endpoint (ms, from the intended send time)</h2>
            <table><tr><th>endpoint</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>outcomes</th></tr>
            \(rows)</table>
            <h2>Audit</h2>
            <table><tr><th></th><th>check</th><th>detail</th></tr>
            \(checks)</table>
            </body></html>
            """
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
            of: ">", with: "&gt;")
    }

    /// Minimal inline SVG charts: no script, no external file.
    enum SVGChart {
        static let width = 900.0
        static let height = 260.0
        static let left = 60.0
        static let right = 160.0
        static let top = 30.0
        static let bottom = 30.0

        static func lines(title: String, x: [Double], series: [(String, [Double])]) -> String {
            let yMax = max(1, series.flatMap(\.1).max() ?? 1)
            var body = ""
            for (index, (name, values)) in series.enumerated() {
                let color = palette[index % palette.count]
                let points = values.enumerated().map { i, v in "\(fmt(px(Double(i), count: values.count))),\(fmt(py(v, yMax)))" }
                body += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"/>"
                body += legend(index, name, color)
            }
            return frame(title: title, xMax: x.last ?? 0, yMax: yMax, body: body)
        }

        static func stacked(title: String, x: [Double], series: [(String, [Double])]) -> String {
            let count = x.count
            var base = [Double](repeating: 0, count: count)
            let tops = (0..<count).map { i in series.reduce(0) { $0 + ($1.1.indices.contains(i) ? $1.1[i] : 0) } }
            let yMax = max(1, tops.max() ?? 1)
            var body = ""
            for (index, (name, values)) in series.enumerated() {
                let color = palette[index % palette.count]
                let upper = (0..<count).map { base[$0] + (values.indices.contains($0) ? values[$0] : 0) }
                var points = (0..<count).map { "\(fmt(px(Double($0), count: count))),\(fmt(py(upper[$0], yMax)))" }
                points += (0..<count).reversed().map { "\(fmt(px(Double($0), count: count))),\(fmt(py(base[$0], yMax)))" }
                body += "<polygon fill=\"\(color)\" fill-opacity=\"0.8\" stroke=\"none\" points=\"\(points.joined(separator: " "))\"/>"
                body += legend(index, name, color)
                base = upper
            }
            return frame(title: title, xMax: x.last ?? 0, yMax: yMax, body: body)
        }

        private static func px(_ i: Double, count: Int) -> Double {
            left + (width - left - right) * (count > 1 ? i / Double(count - 1) : 0)
        }
        private static func py(_ v: Double, _ yMax: Double) -> Double { top + (height - top - bottom) * (1 - v / yMax) }
        private static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

        private static func legend(_ index: Int, _ name: String, _ color: String) -> String {
            let y = top + 16 * Double(index)
            return "<rect x=\"\(fmt(width - right + 10))\" y=\"\(fmt(y))\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
                + "<text x=\"\(fmt(width - right + 25))\" y=\"\(fmt(y + 9))\" font-size=\"11\">\(name)</text>"
        }

        private static func frame(title: String, xMax: Double, yMax: Double, body: String) -> String {
            let plotBottom = height - bottom
            var axis = "<line x1=\"\(left)\" y1=\"\(plotBottom)\" x2=\"\(width - right)\" y2=\"\(plotBottom)\" stroke=\"#718096\"/>"
            axis += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(plotBottom)\" stroke=\"#718096\"/>"
            for step in 0...4 {
                let v = yMax * Double(step) / 4
                let y = py(v, yMax)
                axis +=
                    "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(y + 4))\" font-size=\"10\" text-anchor=\"end\">\(String(format: v >= 100 ? "%.0f" : "%.1f", v))</text>"
                axis += "<line x1=\"\(left)\" y1=\"\(fmt(y))\" x2=\"\(width - right)\" y2=\"\(fmt(y))\" stroke=\"#edf2f7\"/>"
            }
            axis += "<text x=\"\(left)\" y=\"\(height - 8)\" font-size=\"10\">0 s</text>"
            axis += "<text x=\"\(width - right)\" y=\"\(height - 8)\" font-size=\"10\" text-anchor=\"end\">\(fmt(xMax)) s</text>"
            return """
                <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))">\
                <text x="\(left)" y="18" font-size="14" font-weight="bold">\(title)</text>\(axis)\(body)</svg>
                """
        }
    }
}
