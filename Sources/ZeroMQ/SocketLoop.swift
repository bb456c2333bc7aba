import CZeroMQ
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thrown by `SocketLoop.perform` once the loop is closed.
public struct SocketLoopClosedError: Error, Sendable, CustomStringConvertible {
    public let name: String
    public var description: String { "socket loop '\(name)' is closed" }
}

/// Owns ZeroMQ sockets on one dedicated thread and bridges them to async code.
///
/// ZeroMQ sockets are not thread-safe, so every socket of a loop is created, used and closed on the
/// loop's thread. The thread runs a `zmq_poll` loop over its receiving sockets plus a wake-up pipe:
/// - **into the loop**: `perform { sockets in … }` runs a closure on the loop thread (create,
///   bind, connect, set options, send) and returns its result to the caller, async
///   (`perform`) or blocking (`performAndWait`). Closures run in the order they were given.
///   `send(_:on:)` is the common case.
/// - **out of the loop**: every message received on a socket added with `.stream` is yielded to
///   `messages` (one consumer; unbounded buffer, so the consumer must keep up). A socket added
///   with `.handler` instead has each message handed to a closure on the loop thread, which may
///   reply at once (no hop through async code: the fastest path, used by `ZAPHandler`).
///
/// Example:
/// ```swift
/// let loop = try SocketLoop(context: context, name: "coordinator")
/// let router = try await loop.perform { sockets in
///     let socket = try Socket(sockets.context, type: .router)
///     try socket.set(.routerMandatory, true)
///     try socket.bind("tcp://127.0.0.1:*")
///     return sockets.add(socket, receive: .stream)
/// }
/// for try await message in loop.messages {   // message.frames[0] is the peer's routing id
///     _ = try await loop.send([message.frames[0], Data("ok".utf8)], on: router)
/// }
/// ```
/// `close()` (or the loop's deinit) runs the closures already queued, closes every socket (each
/// with its linger) and finishes `messages`. A receive error other than EAGAIN (e.g. `ETERM` after
/// `Context.shutdown()`) also ends the loop and finishes `messages` with that error.
public final class SocketLoop: Sendable {
    /// A socket's handle within its loop.
    public struct SocketID: Hashable, Sendable, CustomStringConvertible {
        let value: Int
        public var description: String { "socket#\(value)" }
    }

    /// A message received on one of the loop's sockets.
    public struct Message: Sendable {
        public let socket: SocketID
        public let frames: [Data]
        /// See `ReceivedMessage.userID`: for CURVE through `ZAPHandler`, the client key's Z85 text.
        public let userID: String?
        /// See `ReceivedMessage.peerAddress`.
        public let peerAddress: String?
    }

    /// What the loop does with a socket's incoming messages.
    public enum Receive {
        /// Not polled (a PUB socket, or one read only inside `perform`).
        case none
        /// Yielded to `messages`.
        case stream
        /// Handed to the closure, on the loop thread; it must not block.
        case handler((Message, Sockets) -> Void)
    }

    /// The sockets of one loop. Only reachable on the loop thread (inside `perform` closures and handlers).
    public final class Sockets {
        public let context: Context
        fileprivate var entries: [(id: SocketID, socket: Socket, receive: Receive)] = []
        private var nextID = 0

        fileprivate init(context: Context) { self.context = context }

        /// Hands a socket to the loop (it must have been made on the loop thread, e.g. in this closure).
        @discardableResult
        public func add(_ socket: Socket, receive: Receive) -> SocketID {
            nextID += 1
            let id = SocketID(value: nextID)
            entries.append((id, socket, receive))
            return id
        }

        /// The socket with this id; throws `ENOTSOCK` if it was removed.
        public func socket(_ id: SocketID) throws -> Socket {
            guard let entry = entries.first(where: { $0.id == id }) else {
                throw ZMQError(code: ENOTSOCK, operation: "SocketLoop: no \(id)")
            }
            return entry.socket
        }

        /// Closes a socket and forgets it (e.g. to reconnect from scratch with a fresh one).
        public func remove(_ id: SocketID) {
            entries.first { $0.id == id }?.socket.close()
            entries.removeAll { $0.id == id }
        }

        fileprivate func closeAll() {
            for entry in entries { entry.socket.close() }
            entries.removeAll()
        }
    }

    public let name: String
    /// Messages of every `.stream` socket, in arrival order per socket. One consumer.
    public let messages: AsyncThrowingStream<Message, Error>
    private let core: Core

    /// Starts the loop thread (with no sockets yet: add them with `perform`).
    public init(context: Context, name: String = "zeromq-loop") throws {
        self.name = name
        let (stream, continuation) = AsyncThrowingStream<Message, Error>.makeStream()
        self.messages = stream
        core = try Core(context: context, name: name, continuation: continuation)
        let core = self.core
        let thread = Thread { core.run() }
        thread.name = name
        core.running.enter()
        thread.start()
    }

    deinit { core.requestStop() }

    /// Runs `body` on the loop thread and returns its result. Not cancellable once queued.
    public func perform<T: Sendable>(_ body: @escaping @Sendable (Sockets) throws -> T) async throws -> T {
        if core.isLoopThread { return try body(core.sockets) }
        return try await withCheckedThrowingContinuation { continuation in
            do {
                try core.enqueue { sockets in continuation.resume(with: Result { try body(sockets) }) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Runs `body` on the loop thread and blocks until it is done (for synchronous code; inside
    /// the loop thread it just runs `body`).
    public func performAndWait<T: Sendable>(_ body: @escaping @Sendable (Sockets) throws -> T) throws -> T {
        if core.isLoopThread { return try body(core.sockets) }
        let result = Locked<Result<T, Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        try core.enqueue { sockets in
            result.withLock { $0 = Result { try body(sockets) } }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    /// Sends a message on one of the loop's sockets without blocking the loop.
    /// - Returns: false if it could not be queued now (high-water mark reached, no peer).
    @discardableResult
    public func send(_ frames: [Data], on socket: SocketID) async throws -> Bool {
        try await perform { try $0.socket(socket).send(frames, dontWait: true) }
    }

    /// Stops the loop: runs the closures already queued, closes every socket, finishes `messages`,
    /// and waits for the thread to end (unless called on the loop thread itself). Idempotent.
    public func close() {
        core.requestStop()
        if !core.isLoopThread { core.running.wait() }
    }

    /// Whether the loop thread is still running.
    public var isRunning: Bool { !core.hasEnded }
}

/// The loop's state. `sockets` is touched only on the loop thread; the rest is behind a lock or
/// immutable, hence `@unchecked Sendable`.
private final class Core: @unchecked Sendable {
    typealias Job = @Sendable (SocketLoop.Sockets) -> Void

    struct Shared: Sendable {
        var jobs: [Job] = []
        var stopping = false
        var ended = false
    }

    let name: String
    let sockets: SocketLoop.Sockets
    let continuation: AsyncThrowingStream<SocketLoop.Message, Error>.Continuation
    let shared = Locked(Shared())
    let running = DispatchGroup()
    let threadMark = UUID().uuidString
    /// Self-pipe: any thread writes a byte to wake the poll; the loop drains it.
    let wakeRead: Int32
    let wakeWrite: Int32

    init(context: Context, name: String, continuation: AsyncThrowingStream<SocketLoop.Message, Error>.Continuation) throws {
        self.name = name
        self.sockets = SocketLoop.Sockets(context: context)
        self.continuation = continuation
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ZMQError(code: errno, operation: "pipe() for SocketLoop '\(name)'") }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        (wakeRead, wakeWrite) = (fds[0], fds[1])
    }

    deinit {
        // Only here, when no thread can call `wake()` any more (closing earlier could let a late
        // wake-up write into a reused descriptor).
        close(wakeRead)
        close(wakeWrite)
    }

    var isLoopThread: Bool { (Thread.current.threadDictionary["ZeroMQ.SocketLoop"] as? String) == threadMark }
    var hasEnded: Bool { shared.withLock { $0.ended } }

    func enqueue(_ job: @escaping Job) throws {
        try shared.withLock { state in
            guard !state.stopping else { throw SocketLoopClosedError(name: name) }
            state.jobs.append(job)
        }
        wake()
    }

    func requestStop() {
        shared.withLock { $0.stopping = true }
        wake()
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)  // EAGAIN: the pipe is full, a wake-up is pending anyway
    }

    private func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    func run() {
        Thread.current.threadDictionary["ZeroMQ.SocketLoop"] = threadMark
        var failure: Error?
        loop: while true {
            let (jobs, stopping) = shared.withLock { state in
                defer { state.jobs.removeAll() }
                return (state.jobs, state.stopping)
            }
            for job in jobs { job(sockets) }
            if stopping { break }

            let polled = sockets.entries.filter { if case .none = $0.receive { false } else { true } }
            var items = [zmq_pollitem_t(socket: nil, fd: wakeRead, events: Int16(ZMQ_POLLIN), revents: 0)]
            for entry in polled {
                guard let handle = try? entry.socket.open("zmq_poll") else { continue }
                items.append(zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
            }
            if zmq_poll(&items, Int32(items.count), -1) < 0 {
                let error = ZMQError.last("zmq_poll in SocketLoop '\(name)'")
                if error.code == EINTR { continue }
                failure = error
                break
            }
            if items[0].revents != 0 { drainWakePipe() }
            for (offset, entry) in polled.enumerated() where items[offset + 1].revents & Int16(ZMQ_POLLIN) != 0 {
                // A bounded batch per socket per round keeps one busy peer from starving the others.
                for _ in 0..<256 {
                    let received: ReceivedMessage
                    do {
                        guard let next = try entry.socket.receiveMessage(dontWait: true) else { break }
                        received = next
                    } catch {
                        failure = error
                        break loop
                    }
                    let message = SocketLoop.Message(socket: entry.id, frames: received.frames,
                                                     userID: received.userID, peerAddress: received.peerAddress)
                    switch entry.receive {
                    case .none: break
                    case .stream: continuation.yield(message)
                    case .handler(let handle): handle(message, sockets)
                    }
                }
            }
        }
        // Refuse new work, run what was queued before the stop, then close everything.
        let leftover = shared.withLock { state in
            state.stopping = true
            defer { state.jobs.removeAll() }
            return state.jobs
        }
        for job in leftover { job(sockets) }
        sockets.closeAll()
        continuation.finish(throwing: failure)
        shared.withLock { $0.ended = true }
        running.leave()
    }
}
