import Foundation
import FlashSaleTestKit
import Testing

@testable import FlashSale
@testable import FlashSaleHTTP

/// Runs the real `loadtest` binary for 3 s at a low rate against a `flashsaled` it spawns
/// (LoadTests/scenarios/smoke.yaml: orders, group opens and joins, coupon claims, payments,
/// idempotent retries, one bot) and checks its audit passed and its report says so.
@Suite(.serialized) struct LoadTestSmokeTests {
    static let packageRoot = CrashRecoveryTests.packageRoot

    /// The build directory holding both `loadtest` and `flashsaled`.
    static var binaries: URL? {
        for configuration in ["debug", "release"] {
            let directory = packageRoot.appendingPathComponent(".build/\(configuration)")
            let both = ["loadtest", "flashsaled"].allSatisfy {
                FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent($0).path)
            }
            if both { return directory }
        }
        return nil
    }

    /// Longest the smoke run may take before the test gives up and kills it.
    static let runSecondsMax = 90.0

    @Test(.enabled(if: binaries != nil, "build loadtest and flashsaled first (swift build)"))
    func smokeScenarioPassesItsAudit() throws {
        let out = TemporaryDirectory()
        defer { out.remove() }
        let process = Process()
        process.executableURL = Self.binaries!.appendingPathComponent("loadtest")
        process.arguments = [
            "--spawn", Self.packageRoot.appendingPathComponent("LoadTests/scenarios/smoke.yaml").path, "--out", out.path,
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // A hung run is killed rather than left to hang the suite.
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.runSecondsMax) {
            if process.isRunning { process.terminate() }
        }
        let text = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let summary = String(decoding: text, as: UTF8.self)
        #expect(process.terminationStatus == 0, "loadtest failed:\n\(summary)")
        #expect(summary.contains("AUDIT PASSED"))

        let report = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: out.path + "/report.json"))))
        #expect(report["auditPassed"] == .bool(true))
        #expect((report["requestsSent"]?.intValue ?? 0) > 500)
        #expect(report["unanswered"]?.intValue == 0)
        // Every second that had answers carries their latency percentiles (closed as the run moved on).
        var secondsWithAnswers = 0
        if case .array(let timeline)? = report["timeline"] {
            for second in timeline where (second["achieved"]?.intValue ?? 0) > 0 {
                secondsWithAnswers += 1
                #expect((second["p99Ms"]?.doubleValue ?? 0) > 0, "second \(second["second"]?.intValue ?? -1) has answers but no p99")
                #expect((second["p50Ms"]?.doubleValue ?? 0) <= (second["p99Ms"]?.doubleValue ?? 0))
            }
        }
        #expect(secondsWithAnswers >= 2)
        let html = try String(contentsOfFile: out.path + "/report.html", encoding: .utf8)
        #expect(html.contains("<svg"))
    }
}
