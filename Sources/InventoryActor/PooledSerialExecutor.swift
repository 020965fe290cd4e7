import Synchronization

/// A serial executor that runs its jobs, one at a time and in order, on the global concurrent
/// pool: what a default actor does, for a shard created without an executor of its own
/// (unit tests, tools). The daemon gives each shard an event loop instead (`Inventory.init`).
public final class PooledSerialExecutor: SerialExecutor, Sendable {
    private struct State {
        var jobs: [UnownedJob] = []
        var head = 0
        /// A drain is scheduled or running.
        var draining = false
    }

    private let state = Mutex(State())

    /// A new, empty executor.
    public init() {}

    /// Queues `job`; schedules a drain on the global pool unless one is pending or running.
    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let schedule = state.withLock { state -> Bool in
            state.jobs.append(unowned)
            if state.draining { return false }
            state.draining = true
            return true
        }
        if schedule { Task.detached { self.drain() } }
    }

    /// Runs queued jobs until none is left.
    private func drain() {
        while let job = next() { job.runSynchronously(on: asUnownedSerialExecutor()) }
    }

    private func next() -> UnownedJob? {
        state.withLock { state in
            guard state.head < state.jobs.count else {
                state.jobs.removeAll(keepingCapacity: true)
                state.head = 0
                state.draining = false
                return nil
            }
            defer { state.head += 1 }
            return state.jobs[state.head]
        }
    }

    /// This executor, unowned.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
