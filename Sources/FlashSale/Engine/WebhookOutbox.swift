import FlashSaleJournal
import Synchronization

/// Where each webhook receiver's delivery stands (§6, ops `OUTBOX`, `/metrics`): kept
/// by the delivery services, read by ops and the metrics. Memory only; what must survive a
/// restart (each cursor, the parked deliveries) is journaled by the services and handed back
/// at recovery.
public final class WebhookOutbox: Sendable {
    /// One receiver's figures.
    public struct Receiver: Sendable, Equatable {
        /// The receiver's URL.
        public var url: String
        /// Every change up to this id was delivered or skipped (not of its types, or parked).
        public var deliveredThrough: Int64 = 0
        /// Deliveries that got a 2xx, since the start.
        public var delivered: Int = 0
        /// Attempts that did not, since the start.
        public var failedAttempts: Int = 0
        /// Deliveries parked (since the first start: recovered from the journal).
        public var parked: Int = 0
        /// What the last failed attempt got; empty when the last attempt succeeded.
        public var lastError: String = ""
    }

    /// Parked deliveries kept for `OUTBOX`, newest last; older ones are still in the journal.
    public static let parkedListedMax = 1_000

    private let receivers: Mutex<[Receiver]>
    private let parkedList = Mutex<[ParkedDelivery]>([])

    /// An outbox for `urls`, in config order.
    public init(urls: [String]) {
        receivers = Mutex(urls.map { Receiver(url: $0) })
    }

    /// Every receiver's figures, in config order.
    public var snapshot: [Receiver] { receivers.withLock { $0 } }

    /// The parked deliveries listed by `OUTBOX`, oldest first.
    public var parked: [ParkedDelivery] { parkedList.withLock { $0 } }

    /// `url`'s figures.
    public func receiver(_ url: String) -> Receiver? { receivers.withLock { $0.first { $0.url == url } } }

    /// Changes `url`'s figures.
    public func update(_ url: String, _ change: (inout Receiver) -> Void) {
        receivers.withLock { list in
            guard let index = list.firstIndex(where: { $0.url == url }) else { return }
            change(&list[index])
        }
    }

    /// Records a parked delivery.
    public func park(_ delivery: ParkedDelivery) {
        update(delivery.url) { $0.parked += 1 }
        parkedList.withLock { list in
            list.append(delivery)
            if list.count > Self.parkedListedMax { list.removeFirst(list.count - Self.parkedListedMax) }
        }
    }

    /// Replaces the receivers (a reload): those still listed keep their figures, a new one
    /// starts from its journaled cursor if it had one, else from the oldest change kept.
    public func replaceReceivers(urls: [String]) {
        receivers.withLock { list in
            for receiver in list { remembered.withLock { $0[receiver.url] = receiver.deliveredThrough } }
            let known = remembered.withLock { $0 }
            list = urls.map { url in
                list.first { $0.url == url } ?? Receiver(url: url, deliveredThrough: known[url] ?? 0)
            }
        }
    }

    /// Every receiver's durable cursor ever restored or held, for one listed again.
    private let remembered = Mutex<[String: Int64]>([:])

    /// Loads what the journal holds: cursors and parked deliveries.
    func restore(cursors: [String: Int64], parked: [ParkedDelivery]) {
        remembered.withLock { $0 = cursors }
        receivers.withLock { list in
            for index in list.indices {
                list[index].deliveredThrough = cursors[list[index].url] ?? 0
                list[index].parked = parked.count { $0.url == list[index].url }
            }
        }
        parkedList.withLock { $0 = Array(parked.suffix(Self.parkedListedMax)) }
    }
}
