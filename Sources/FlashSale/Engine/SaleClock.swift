import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the engine reads the time: the wall clock in the daemon, a manual clock in tests.
public protocol SaleClock: Sendable {
    /// Now, unix epoch milliseconds.
    func nowMs() -> Int64
}

/// The system's wall clock (`CLOCK_REALTIME`).
public struct SystemClock: SaleClock {
    /// Creates the clock.
    public init() {}

    /// Now, unix epoch milliseconds.
    public func nowMs() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

/// A clock that moves only when told: expiry and schedules are tested without sleeping.
public final class ManualClock: SaleClock {
    private let current: Atomic<Int64>

    /// A clock standing at `startMs`.
    public init(startMs: Int64) {
        current = Atomic(startMs)
    }

    /// Now, unix epoch milliseconds.
    public func nowMs() -> Int64 { current.load(ordering: .acquiring) }

    /// Moves the clock forward by `ms`.
    public func advance(ms: Int64) {
        current.add(ms, ordering: .releasing)
    }

    /// Sets the clock.
    public func set(ms: Int64) {
        current.store(ms, ordering: .releasing)
    }
}

/// RFC 3339 UTC with whole seconds (`2026-11-25T12:00:00Z`), as the contract's JSON wants.
public func rfc3339(ms: Int64) -> String {
    var seconds = time_t(ms >= 0 ? ms / 1000 : (ms - 999) / 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func pad(_ value: Int32, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
        + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
}

/// `ms` as RFC 3339 UTC with milliseconds: `2026-12-07T04:56:34.123Z` (log lines, and an
/// admin edit's times kept exactly).
public func rfc3339Milliseconds(ms: Int64) -> String {
    let millis = ((ms % 1_000) + 1_000) % 1_000
    let seconds = rfc3339(ms: ms - millis)
    let digits = String(millis)
    return String(seconds.dropLast()) + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
}
