import FlashSaleJournal
import NIOCore
import Synchronization

/// Answers held on one event loop until the journal has made their changes durable.
///
/// The loop's requests register here instead of each awaiting a continuation: the journal's
/// writer, after a commit, calls `journalAdvanced()` on every loop's queue; a queue holding
/// answers then enqueues one drain onto its loop, which hands every decided answer its outcome.
/// So one commit costs each loop at most one wake-up, however many answers it releases, and a
/// request never leaves its loop to wait.
///
/// `armed` is how the writer knows a queue holds answers. The loop arms it, then looks at the
/// journal once more; the writer publishes the durable ticket, then disarms: whichever comes
/// second sees the other (both sequentially consistent), so no answer is left waiting.
final class DurableAnswers: JournalListener, @unchecked Sendable {
    /// The loop every method but `journalAdvanced` runs on.
    let loop: any EventLoop
    private let journal: Journal
    /// Answers waiting on their ticket, nearly in ticket order. Only the loop touches it.
    private var waiting: [(ticket: UInt64, answer: (Rejection?) -> Void)] = []
    /// Set while `waiting` may hold answers; cleared by the writer as it enqueues a drain.
    private let armed = Atomic<Bool>(false)

    /// A queue on `loop` for answers waiting on `journal`; registers with it.
    init(loop: any EventLoop, journal: Journal) {
        self.loop = loop
        self.journal = journal
        journal.addListener(self)
    }

    /// Calls `answer` (on the loop) once `ticket` is durable, with nil, or with the rejection
    /// to give if it never will be. At once, before returning, when the ticket is decided now.
    func whenDurable(_ ticket: UInt64, _ answer: @escaping (Rejection?) -> Void) {
        loop.assertInEventLoop()
        if journal.mayBeDecided(ticket), let outcome = journal.outcome(of: ticket) {
            answer(Self.rejection(outcome))
            return
        }
        waiting.append((ticket, answer))
        // The entries already waiting are covered: armed, or a drain is enqueued.
        arm(checking: CollectionOfOne(ticket))
    }

    /// Writer thread: a commit (or a failure, or the close) happened.
    func journalAdvanced() {
        guard armed.exchange(false, ordering: .sequentiallyConsistent) else { return }
        loop.execute { self.drain() }
    }

    /// Hands every decided answer its outcome; re-arms for the rest.
    private func drain() {
        // Answering writes responses, which may read the next request and append here: work
        // on the list as taken, then put back what is still undecided.
        let taken = waiting
        waiting = []
        var undecided: [(ticket: UInt64, answer: (Rejection?) -> Void)] = []
        for entry in taken {
            if journal.mayBeDecided(entry.ticket), let outcome = journal.outcome(of: entry.ticket) {
                entry.answer(Self.rejection(outcome))
            } else {
                undecided.append(entry)
            }
        }
        guard !undecided.isEmpty || !waiting.isEmpty else { return }
        waiting.insert(contentsOf: undecided, at: 0)
        arm(checking: waiting.lazy.map(\.ticket))
    }

    /// Asks the writer for a drain after its next commit. Then looks at `tickets` once more: a
    /// commit that published between the caller's look and the arming saw the queue unarmed,
    /// so the drain is enqueued here instead.
    private func arm(checking tickets: some Sequence<UInt64>) {
        armed.store(true, ordering: .sequentiallyConsistent)
        guard tickets.contains(where: { journal.mayBeDecided($0) }) else { return }
        if armed.exchange(false, ordering: .sequentiallyConsistent) {
            loop.execute { self.drain() }
        }
    }

    private static func rejection(_ outcome: Result<Void, JournalError>) -> Rejection? {
        switch outcome {
        case .success: nil
        case .failure(let error): .unavailable("\(error)")
        }
    }

    /// Answers waiting now (tests).
    var waitingCount: Int {
        loop.assertInEventLoop()
        return waiting.count
    }
}
