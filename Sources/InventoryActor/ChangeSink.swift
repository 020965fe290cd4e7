/// A change decided by a shard, to be made durable before anyone is told of it.
public enum InventoryChange: Sendable, Equatable {
    /// An order as it stands after a change (created, paid, expired, canceled, refund pending).
    case order(Order)
    /// A second transaction paid an already-paid order (`order`, as it stands): it is to be refunded.
    case doublePayment(Order, transaction: String, atMs: Int64)
    /// A ledger's stock changed by `delta` units.
    case restock(LedgerKey, delta: Int64)
    /// A group as it stands after a change (opened, formed, failed); its members are the
    /// orders that name it.
    case group(Group)
    /// A coupon was claimed (its later states follow from the orders that name it).
    case coupon(Coupon)
}

/// Where shards report their changes: the journal in the daemon, a recorder in tests.
///
/// Called inside a shard's actor, in the order the shard decided, so it must not block on
/// I/O: it buffers and returns a ticket (a sequence number) that the caller can wait on
/// before acknowledging. Ticket 0 means nothing to wait for.
public protocol ChangeSink: Sendable {
    /// Buffers `change` and returns its ticket.
    func record(_ change: InventoryChange) -> UInt64

    /// Buffers `changes` as one unit that becomes durable whole or not at all (a group
    /// forming moves every member order and the group together); the last ticket, 0 if empty.
    func recordUnit(_ changes: [InventoryChange]) -> UInt64

    /// Buffers `change` and `attachment` as one unit: something the caller keeps with the
    /// change that the core does not know (the engine's record of the answer it will give,
    /// replayed to an idempotent retry), durable together or not at all. The last ticket.
    func record(_ change: InventoryChange, attachment: any Sendable) -> UInt64
}

extension ChangeSink {
    /// A sink that keeps no attachments records the change alone.
    public func record(_ change: InventoryChange, attachment: any Sendable) -> UInt64 { record(change) }
}

/// A sink that keeps nothing: for benchmarks of the core and for the journal-off mode.
public struct DiscardingChangeSink: ChangeSink {
    /// Creates the sink.
    public init() {}
    /// Drops the change; ticket 0.
    public func record(_ change: InventoryChange) -> UInt64 { 0 }
    /// Drops the changes; ticket 0.
    public func recordUnit(_ changes: [InventoryChange]) -> UInt64 { 0 }
}

/// A result and the ticket of the change it recorded (0 when nothing changed).
public struct Recorded<Result: Sendable>: Sendable {
    /// The decision.
    public let result: Result
    /// The sink's ticket for the recorded change; 0 if none.
    public let ticket: UInt64

    /// A decision and its ticket.
    public init(result: Result, ticket: UInt64) {
        self.result = result
        self.ticket = ticket
    }
}
