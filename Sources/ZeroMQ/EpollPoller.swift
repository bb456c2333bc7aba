#if os(Linux)
import CZeroMQ
import Glibc

/// Waits on many sockets at a cost that grows with the sockets that have news, not with the number
/// of sockets: a Linux epoll set over each socket's `ZMQ_FD`. (`Poller`/`zmq_poll` asks every socket
/// for its events and polls every descriptor on each call: fine for a few sockets, a core's worth
/// of work for a thousand woken a thousand times a second.) Not `Sendable`: use it on the sockets' thread.
///
/// libzmq's `ZMQ_FD` only signals that a socket's events may have changed, and any call on the
/// socket can consume that signal. So:
/// - `wait` returns the sockets that have a message now: it reads `events` for each socket whose
///   descriptor fired, and again for each socket it returned last time or that was marked with
///   `recheck` (a socket that was not emptied is thus returned again; nothing is lost).
/// - Receive from a returned socket until nothing is left (`receive(dontWait: true)` returns nil).
/// - After sending on a socket, call `recheck(_:)`: the send may have consumed the signal of a
///   message that arrived meanwhile.
/// Remove a socket before closing it.
public final class EpollPoller {
    private let epoll: Int32
    /// Slot → socket (nil: a free slot) and the descriptor registered for it.
    private var entries: [(socket: Socket, descriptor: Int32)?] = []
    private var slots: [ObjectIdentifier: Int] = [:]
    private var freeSlots: [Int] = []
    /// Slots whose `events` the next `wait` reads whatever the descriptors say.
    private var pending: Set<Int> = []
    private var buffer: [epoll_event]

    /// - Parameter batch: most descriptor notifications taken from the kernel per `wait` (more stay
    ///   queued for the next call).
    public init(batch: Int = 256) throws {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw ZMQError(code: errno, operation: "epoll_create1") }
        buffer = Array(repeating: epoll_event(), count: max(1, batch))
    }

    deinit { Glibc.close(epoll) }

    /// The number of sockets in the set.
    public var count: Int { slots.count }

    /// Adds a socket (its first `wait` checks it whether or not its descriptor fires).
    public func add(_ socket: Socket) throws {
        guard slots[ObjectIdentifier(socket)] == nil else { return }
        let descriptor = try socket.get(.fileDescriptor)
        let slot = freeSlots.popLast() ?? entries.count
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = UInt64(slot)
        guard epoll_ctl(epoll, Int32(EPOLL_CTL_ADD), descriptor, &event) == 0 else {
            let code = errno
            if slot < entries.count { freeSlots.append(slot) }
            throw ZMQError(code: code, operation: "epoll_ctl(ADD, ZMQ_FD \(descriptor))")
        }
        if slot == entries.count { entries.append((socket, descriptor)) } else { entries[slot] = (socket, descriptor) }
        slots[ObjectIdentifier(socket)] = slot
        pending.insert(slot)
    }

    /// Removes a socket (no-op if it is not in the set).
    public func remove(_ socket: Socket) {
        guard let slot = slots.removeValue(forKey: ObjectIdentifier(socket)), let entry = entries[slot] else { return }
        var event = epoll_event()
        _ = epoll_ctl(epoll, Int32(EPOLL_CTL_DEL), entry.descriptor, &event)  // fails only if already gone
        entries[slot] = nil
        freeSlots.append(slot)
        pending.remove(slot)
    }

    /// Makes the next `wait` read this socket's `events` (call it after every send on the socket).
    public func recheck(_ socket: Socket) {
        if let slot = slots[ObjectIdentifier(socket)] { pending.insert(slot) }
    }

    /// Waits until at least one socket has a message to receive, or `timeout` passes (nil: no limit).
    /// - Returns: the sockets with a message to receive now (each once); empty on timeout.
    public func wait(timeout: Duration?) throws -> [Socket] {
        var ready: [Int] = []
        let checkNow = pending
        pending.removeAll(keepingCapacity: true)
        for slot in checkNow where try isReadable(slot) { ready.append(slot) }
        let readyBefore = Set(ready)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            let wait: Int32 = !ready.isEmpty ? 0 : deadline.map { milliseconds(ContinuousClock.now.duration(to: $0)) } ?? -1
            let count = buffer.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), wait) }
            if count < 0 {
                guard errno == EINTR else { throw ZMQError(code: errno, operation: "epoll_wait") }
                continue
            }
            for index in 0..<Int(count) {
                let slot = Int(buffer[index].data.u64)
                guard slot < entries.count, !readyBefore.contains(slot) else { continue }
                if try isReadable(slot) { ready.append(slot) }
            }
            // A descriptor can fire for other news (a peer connected, room to send): wait on.
            if !ready.isEmpty || wait == 0 { break }
        }
        pending.formUnion(ready)
        return ready.map { entries[$0]!.socket }
    }

    private func isReadable(_ slot: Int) throws -> Bool {
        guard let entry = entries[slot] else { return false }
        return try entry.socket.get(.events).contains(.readable)
    }
}
#endif
