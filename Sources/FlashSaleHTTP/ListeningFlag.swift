import Synchronization

/// Set once all `required` listeners are open (`/readyz`).
public final class ListeningFlag: Sendable {
    private let opened = Atomic<Int>(0)
    private let required: Int
    public init(required: Int = 1) { self.required = required }
    public var isSet: Bool { opened.load(ordering: .acquiring) >= required }
    /// One more listener is open.
    public func set() { opened.add(1, ordering: .releasing) }
}
