import CZeroMQ

/// A libzmq context: owns the I/O threads and every socket made from it.
///
/// Unlike sockets, a context is thread-safe, so `Context` is `Sendable`. Each `Socket` keeps its
/// context alive; the context is terminated when the last reference goes away (or by `close()`).
/// `zmq_ctx_term` waits until every socket of the context is closed, so close sockets first.
public final class Context: @unchecked Sendable {
    // @unchecked: `handle` is immutable and libzmq's context functions are thread-safe; the
    // terminated flag is behind a lock.
    let handle: UnsafeMutableRawPointer
    private let terminated = Locked(false)

    /// - Parameters:
    ///   - ioThreads: libzmq I/O threads (one is plenty below a few hundred MB/s).
    ///   - maxSockets: the most sockets this context may hold at once.
    /// Created with `ZMQ_BLOCKY` off: on termination, pending outgoing messages are discarded
    /// (linger 0) and calls blocked on this context's sockets fail with `ETERM` instead of hanging.
    public init(ioThreads: Int32 = 1, maxSockets: Int32 = 1024) throws {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        self.handle = handle
        for (option, value, name) in [(ZMQ_IO_THREADS, ioThreads, "ZMQ_IO_THREADS"),
                                      (ZMQ_MAX_SOCKETS, maxSockets, "ZMQ_MAX_SOCKETS"),
                                      (ZMQ_BLOCKY, 0, "ZMQ_BLOCKY")] where zmq_ctx_set(handle, option, value) != 0 {
            let error = ZMQError.last("zmq_ctx_set(\(name), \(value))")
            zmq_ctx_term(handle)
            throw error
        }
    }

    /// Makes every blocking call on this context's sockets fail with `ETERM` and refuses new sockets,
    /// without waiting. Safe from any thread; sockets must still be closed.
    public func shutdown() {
        _ = terminated.withLock { done in done ? 0 : zmq_ctx_shutdown(handle) }
    }

    /// Terminates the context (`zmq_ctx_term`): blocks until every socket made from it is closed.
    /// Idempotent. Never call it while this thread still holds an open socket of this context.
    public func close() {
        let shouldTerminate = terminated.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard shouldTerminate else { return }
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    deinit { close() }
}
