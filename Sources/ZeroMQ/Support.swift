import Foundation

/// A value guarded by a lock, for the few pieces of state shared between a socket thread and the
/// rest of the program. (Foundation's `NSLock` rather than `Synchronization.Mutex`, which needs macOS 15.)
final class Locked<State: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var state: State

    init(_ state: State) { self.state = state }

    func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
}

/// Milliseconds for libzmq's `int` timeouts, rounded up so that a positive duration never becomes 0
/// ("do not wait"), clamped to `Int32`.
func milliseconds(_ duration: Duration) -> Int32 {
    let (seconds, attoseconds) = duration.components
    if seconds < 0 || (seconds == 0 && attoseconds < 0) { return 0 }
    let fromAtto = (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
    if overflow { return Int32.max }
    return Int32(clamping: product.addingReportingOverflow(fromAtto).overflow ? Int64.max : product + fromAtto)
}
