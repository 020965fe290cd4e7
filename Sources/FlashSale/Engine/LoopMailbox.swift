import NIOCore
import Synchronization

/// Work one event loop hands another, delivered in batches: the first item posted into an
/// empty box enqueues one drain onto the target loop; items posted before that drain runs
/// ride along with it. Under load a hop between loops then costs a locked append instead of
/// a task enqueued (and perhaps a wake-up) per item.
///
/// One box per (sending loop, target loop) pair: only the sender appends and only the target
/// drains, so the lock is shared by two threads at most. A box has no bound of its own: the
/// engine posts one item per request in flight, which the HTTP server's admission bounds
/// (`admission.max_inflight`); `DurableAnswers` is bounded the same way.
public final class LoopMailbox<Item: Sendable>: Sendable {
    private let target: any EventLoop
    private let items = Mutex<[Item]>([])
    /// Runs on `target` with each batch, in posting order.
    private let deliver: @Sendable ([Item]) -> Void

    /// A box whose items `deliver` receives on `target`.
    public init(target: any EventLoop, deliver: @escaping @Sendable ([Item]) -> Void) {
        self.target = target
        self.deliver = deliver
    }

    /// Posts `item` (from any thread); it is delivered on the target loop soon, in order.
    public func post(_ item: Item) {
        let first = items.withLock { items in
            items.append(item)
            return items.count == 1
        }
        if first { target.execute { self.drain() } }
    }

    private func drain() {
        let batch = items.withLock { items in
            var taken: [Item] = []
            taken.reserveCapacity(items.count)
            swap(&taken, &items)
            return taken
        }
        deliver(batch)
    }
}
