import Synchronization

/// Admission to the engine's state: every request, ops command and timed sweep passes it.
///
/// Closed until recovery has finished, and again while the state is rebuilt after a failed
/// commit (fail-stop). Closing it refuses newcomers at once; `drained()` then waits for the
/// ones already inside, whose journal waits fail at once, so the rebuild never races a change.
final class EngineGate: Sendable {
    private let isOpenFlag = Atomic<Bool>(false)
    private let inside = Atomic<Int>(0)

    /// Whether newcomers are admitted.
    var isOpen: Bool { isOpenFlag.load(ordering: .sequentiallyConsistent) }

    /// Admits the caller (true: it must call `leave()`), or refuses it while closed.
    func enter() -> Bool {
        inside.add(1, ordering: .sequentiallyConsistent)
        if isOpenFlag.load(ordering: .sequentiallyConsistent) { return true }
        inside.subtract(1, ordering: .sequentiallyConsistent)
        return false
    }

    /// The caller admitted by `enter()` is done.
    func leave() {
        inside.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Admits newcomers.
    func open() {
        isOpenFlag.store(true, ordering: .sequentiallyConsistent)
    }

    /// Refuses newcomers (those inside go on).
    func close() {
        isOpenFlag.store(false, ordering: .sequentiallyConsistent)
    }

    /// Returns once nobody admitted before `close()` is still inside (checked every millisecond:
    /// they leave within a journal round trip).
    func drained() async {
        while inside.load(ordering: .sequentiallyConsistent) > 0 {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }
}
