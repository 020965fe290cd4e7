import Synchronization

/// The last admin and ops writes, for ops `AUDIT [n]`: what, when, from which address,
/// through which door, with what result. Bounded (`capacity`, oldest dropped first) and kept
/// since the start; the log (`admin write`, `ops write` lines) keeps them all.
public final class AuditTrail: Sendable {
    /// One write.
    public struct Entry: Sendable, Equatable {
        /// When, ms since the epoch.
        public var atMs: Int64
        /// `ops` or `admin`.
        public var door: String
        /// The client's address.
        public var peer: String
        /// The command or route with its arguments.
        public var what: String
        /// `ok`, or the error code.
        public var result: String
    }

    /// The most entries kept.
    public static let capacity = 1_000

    private let entries = Mutex<[Entry]>([])

    /// An empty trail.
    public init() {}

    /// Adds a write.
    public func record(atMs: Int64, door: String, peer: String, what: String, result: String) {
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeFirst(entries.count - Self.capacity + 1) }
            entries.append(Entry(atMs: atMs, door: door, peer: peer, what: what, result: result))
        }
    }

    /// The newest `count` writes, oldest first.
    public func last(_ count: Int) -> [Entry] {
        entries.withLock { Array($0.suffix(max(0, count))) }
    }
}
