import Foundation

/// A flag that stops a merge in progress: `MergeEngine.merge` checks it between tensors and
/// between chunks (on the writing thread and on every merging thread), then throws
/// `MergeError(.cancelled)` after removing its partial output. Any thread may call `cancel()`.
public final class MergeCancellation: @unchecked Sendable {  // `cancelled` guarded by `lock`
    private let lock = NSLock()
    private var cancelled = false

    public init() {}

    /// Asks the merge to stop; it returns promptly (within about one chunk per thread).
    public func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
    }

    public var isCancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cancelled
    }

    /// Throws `MergeError(.cancelled)` once `cancel()` was called.
    func check() throws {
        if isCancelled { throw MergeError(.cancelled) }
    }
}
