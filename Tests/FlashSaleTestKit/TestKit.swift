import Foundation
import Logging
import Synchronization

// Helpers every test target shares. Foundation and swift-log only: a test target that takes
// these gains no dependency on a layer of ours it does not test.

/// A fresh temporary directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-test-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// What `pollUntil` throws when its condition never held.
public struct PollTimedOut: Error, CustomStringConvertible {
    public var description: String { "condition not reached in 10 s" }
}

/// Waits (bounded: 10 s) until `condition` holds, for outcomes driven by real time (the
/// journal writer's backoff, a server noticing a close); throws `PollTimedOut` if it never does.
public func pollUntil(_ condition: () -> Bool) async throws {
    for _ in 0..<2_000 {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    throw PollTimedOut()
}

/// A switch a fault injector reads.
public final class FaultFlag: Sendable {
    private let on = Atomic<Bool>(false)
    public init() {}
    public var isOn: Bool { on.load(ordering: .acquiring) }
    public func set(_ value: Bool) { on.store(value, ordering: .releasing) }
}

/// Blocks the thread that reaches `blockIfEngaged()` while engaged, once, until `release()`:
/// holds a journal commit (as a fault injector, on the writer thread) or a shard inside a
/// decision (as its observer), so a test can act while it is held.
public final class Hold: Sendable {
    private let engaged = Atomic<Bool>(false)
    private let holding = Atomic<Bool>(false)
    private let gate = DispatchSemaphore(value: 0)

    public init() {}

    /// The next `blockIfEngaged()` blocks.
    public func engage() { engaged.store(true, ordering: .releasing) }

    /// Whether a thread is blocked now.
    public var isHolding: Bool { holding.load(ordering: .acquiring) }

    /// Lets the blocked thread go; later calls pass.
    public func release() {
        engaged.store(false, ordering: .releasing)
        gate.signal()
    }

    /// Blocks until `release()` if engaged (the first caller only).
    public func blockIfEngaged() {
        guard engaged.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged else { return }
        holding.store(true, ordering: .releasing)
        gate.wait()
        holding.store(false, ordering: .releasing)
    }
}

/// A small deterministic generator, so a failing random test replays from its seed.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(state: UInt64) { self.state = state }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Keeps every log line, to count them.
public final class CapturedLog: Sendable {
    private let entries = Mutex<[(level: Logger.Level, message: String)]>([])

    public init() {}

    public var logger: Logger { Logger(label: "test") { _ in Handler(log: self) } }

    public var messages: [String] { entries.withLock { $0.map(\.message) } }

    public func count(level: Logger.Level) -> Int { entries.withLock { $0.count { $0.level == level } } }

    fileprivate func append(_ level: Logger.Level, _ message: String) { entries.withLock { $0.append((level, message)) } }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) { log.append(event.level, event.message.description) }
    }
}
