import Dispatch
import Foundation

/// Runs `body(index, worker)` for every index in `0..<count` on all cores. Each of the
/// `workerCount(for:)` workers takes indices one at a time, so scratch memory indexed by `worker`
/// can be reused across indices without sharing.
func parallelForEach(count: Int, body: @Sendable (_ index: Int, _ worker: Int) -> Void) {
    let workers = workerCount(for: count)
    let counter = SharedCounter()
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        while true {
            let index = counter.next()
            guard index < count else { return }
            body(index, worker)
        }
    }
}

/// Number of workers `parallelForEach` uses for `count` items.
func workerCount(for count: Int) -> Int {
    max(1, min(count, ProcessInfo.processInfo.activeProcessorCount))
}

/// A counter handing out 0, 1, 2, … to concurrent callers.
final class SharedCounter: @unchecked Sendable {  // state guarded by `lock`
    private let lock = NSLock()
    private var value = 0

    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}
