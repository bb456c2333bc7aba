import CZeroMQ
import Foundation

/// The libzmq socket types this wrapper supports.
public enum SocketType: Sendable, CaseIterable, CustomStringConvertible {
    case pair, publisher, subscriber, request, reply, dealer, router, pull, push

    var rawValue: Int32 {
        switch self {
        case .pair: ZMQ_PAIR
        case .publisher: ZMQ_PUB
        case .subscriber: ZMQ_SUB
        case .request: ZMQ_REQ
        case .reply: ZMQ_REP
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        case .pull: ZMQ_PULL
        case .push: ZMQ_PUSH
        }
    }

    public var description: String {
        switch self {
        case .pair: "PAIR"
        case .publisher: "PUB"
        case .subscriber: "SUB"
        case .request: "REQ"
        case .reply: "REP"
        case .dealer: "DEALER"
        case .router: "ROUTER"
        case .pull: "PULL"
        case .push: "PUSH"
        }
    }
}

/// A libzmq socket. Not thread-safe, hence not `Sendable`: create, use and close it on one thread
/// (see `SocketLoop` for reaching sockets from async code).
///
/// Messages are multipart: `[Data]`, one `Data` per frame, byte-exact, any size (each frame goes
/// through a `zmq_msg_t`, nothing is truncated). Empty frames are allowed.
///
/// ROUTER sockets: the wrapper adds and strips nothing. A message received on a ROUTER starts with
/// the sender's routing-id frame; to reply, send a message whose first frame is that routing id.
/// A DEALER talking to a ROUTER sends exactly the frames it gives (no empty delimiter is added —
/// add one yourself if you speak REQ/REP envelopes).
///
/// Closing: `close()` (or deinit) closes the socket; pending outgoing messages are kept for the
/// socket's linger period (`SocketOption.linger`, 0 by default in a `Context` of this module).
public final class Socket {
    public let type: SocketType
    /// The context this socket was made from (kept alive by the socket).
    public let context: Context
    private var handle: UnsafeMutableRawPointer?
    /// One `zmq_msg_t` reused for every frame (a message must not move while initialized).
    private let message: UnsafeMutablePointer<zmq_msg_t>

    public init(_ context: Context, type: SocketType) throws {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQError.last("zmq_socket(\(type))")
        }
        self.type = type
        self.context = context
        self.handle = handle
        self.message = .allocate(capacity: 1)
    }

    deinit {
        close()
        message.deallocate()
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool { handle == nil }

    /// Closes the socket (idempotent). Outgoing messages still queued are kept for the linger period.
    public func close() {
        guard let handle else { return }
        zmq_close(handle)
        self.handle = nil
    }

    /// Sets the linger period, then closes: queued outgoing messages are sent for at most `linger`.
    public func close(linger: Duration) {
        if handle != nil { try? set(.linger, linger) }
        close()
    }

    /// The raw `void *` socket, for this module's C calls; throws `ENOTSOCK` once closed.
    func open(_ operation: @autoclosure () -> String) throws -> UnsafeMutableRawPointer {
        guard let handle else { throw ZMQError(code: ENOTSOCK, operation: operation() + " on a closed socket") }
        return handle
    }

    // MARK: Endpoints

    /// Binds to an endpoint, e.g. `tcp://127.0.0.1:*` (any free port: read it back from `lastEndpoint`),
    /// `tcp://*:5555`, `inproc://name`, `ipc:///path`.
    public func bind(_ endpoint: String) throws {
        try call("zmq_bind(\(endpoint))") { zmq_bind($0, endpoint) }
    }

    /// Connects to an endpoint. For TCP this returns at once; libzmq connects (and reconnects) in the background.
    public func connect(_ endpoint: String) throws {
        try call("zmq_connect(\(endpoint))") { zmq_connect($0, endpoint) }
    }

    /// Stops listening on an endpoint given to `bind` (use the resolved `lastEndpoint` after a wildcard bind).
    public func unbind(_ endpoint: String) throws {
        try call("zmq_unbind(\(endpoint))") { zmq_unbind($0, endpoint) }
    }

    /// Disconnects from an endpoint given to `connect`.
    public func disconnect(_ endpoint: String) throws {
        try call("zmq_disconnect(\(endpoint))") { zmq_disconnect($0, endpoint) }
    }

    /// The endpoint last bound or connected, with wildcards resolved (`tcp://127.0.0.1:41877`).
    public var lastEndpoint: String {
        get throws { try get(.lastEndpoint) }
    }

    private func call(_ operation: @autoclosure () -> String, _ body: (UnsafeMutableRawPointer) -> Int32) throws {
        let socket = try open(operation())
        while body(socket) != 0 {
            let error = ZMQError.last(operation())
            if error.code != EINTR { throw error }
        }
    }

    // MARK: Sending

    /// Sends one multipart message (at least one frame).
    /// - Parameter dontWait: do not block; if the message cannot be queued now (high-water mark
    ///   reached, no peer yet), return `false` and send nothing.
    /// - Returns: `true` when queued; `false` only when it would have blocked (`dontWait`, or the
    ///   send timeout expired).
    /// - Throws: `ZMQError`, e.g. `EHOSTUNREACH` from a router-mandatory ROUTER.
    @discardableResult
    public func send(_ frames: [Data], dontWait: Bool = false) throws -> Bool {
        guard !frames.isEmpty else {
            throw ZMQError(code: EINVAL, operation: "send of a message with no frames")
        }
        let socket = try open("zmq_msg_send")
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            guard try sendFrame(frame, on: socket, flags: flags) else {
                // libzmq checks the high-water mark on the first frame only: once it is accepted the
                // rest of the message always is. EAGAIN later means something is badly wrong.
                if index == 0 { return false }
                throw ZMQError(code: EAGAIN, operation: "zmq_msg_send of frame \(index) of \(frames.count)")
            }
        }
        return true
    }

    /// Sends one frame; `more: true` announces that further frames of the same message follow.
    @discardableResult
    public func send(_ frame: Data, more: Bool = false, dontWait: Bool = false) throws -> Bool {
        let socket = try open("zmq_msg_send")
        var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
        if more { flags |= ZMQ_SNDMORE }
        return try sendFrame(frame, on: socket, flags: flags)
    }

    /// `false` on EAGAIN; throws on any other error.
    private func sendFrame(_ frame: Data, on socket: UnsafeMutableRawPointer, flags: Int32) throws -> Bool {
        guard zmq_msg_init_size(message, frame.count) == 0 else {
            throw ZMQError.last("zmq_msg_init_size(\(frame.count))")
        }
        if !frame.isEmpty, let destination = zmq_msg_data(message) {
            frame.withUnsafeBytes { source in
                destination.copyMemory(from: source.baseAddress!, byteCount: source.count)
            }
        }
        while true {
            if zmq_msg_send(message, socket, flags) >= 0 { return true }  // libzmq now owns the message
            let error = ZMQError.last("zmq_msg_send")
            if error.code == EINTR { continue }
            zmq_msg_close(message)
            if error.code == EAGAIN { return false }
            throw error
        }
    }

    // MARK: Receiving

    /// Receives one whole multipart message.
    /// - Parameter dontWait: do not block; return `nil` if no message is waiting.
    /// - Returns: the frames, or `nil` when nothing arrived (`dontWait`, or the receive timeout
    ///   `SocketOption.receiveTimeout` expired).
    public func receive(dontWait: Bool = false) throws -> [Data]? {
        try receiveMessage(dontWait: dontWait, metadata: false)?.frames
    }

    /// Receives one whole multipart message, waiting at most `timeout`; `nil` if none arrived in time.
    public func receive(timeout: Duration) throws -> [Data]? {
        try receiveMessage(timeout: timeout, metadata: false)?.frames
    }

    /// Like `receive(dontWait:)`, with the connection's metadata (ZAP user id, peer address).
    public func receiveMessage(dontWait: Bool = false) throws -> ReceivedMessage? {
        try receiveMessage(dontWait: dontWait, metadata: true)
    }

    /// Like `receive(timeout:)`, with the connection's metadata (ZAP user id, peer address).
    public func receiveMessage(timeout: Duration) throws -> ReceivedMessage? {
        try receiveMessage(timeout: timeout, metadata: true)
    }

    func receiveMessage(timeout: Duration, metadata: Bool) throws -> ReceivedMessage? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let message = try receiveMessage(dontWait: true, metadata: metadata) { return message }
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero { return nil }
            _ = try Poller.wait(for: self, events: ZMQ_POLLIN, timeout: left)
        }
    }

    func receiveMessage(dontWait: Bool, metadata: Bool) throws -> ReceivedMessage? {
        let socket = try open("zmq_msg_recv")
        guard let first = try receiveFrame(on: socket, flags: dontWait ? ZMQ_DONTWAIT : 0, metadata: metadata) else {
            return nil
        }
        var frames = [first.data]
        var more = first.more
        var (userID, peerAddress) = (first.userID, first.peerAddress)
        while more {
            // The rest of a multipart message arrives together with its first frame. (A ROUTER's
            // routing-id frame carries no metadata: read it from the peer's own frames.)
            guard let next = try receiveFrame(on: socket, flags: 0, metadata: metadata && peerAddress == nil) else {
                throw ZMQError(code: EAGAIN, operation: "zmq_msg_recv of frame \(frames.count) (message cut short)")
            }
            frames.append(next.data)
            more = next.more
            if peerAddress == nil { (userID, peerAddress) = (next.userID, next.peerAddress) }
        }
        return ReceivedMessage(frames: frames, userID: userID, peerAddress: peerAddress)
    }

    private func receiveFrame(on socket: UnsafeMutableRawPointer, flags: Int32, metadata: Bool) throws
        -> (data: Data, more: Bool, userID: String?, peerAddress: String?)? {
        guard zmq_msg_init(message) == 0 else { throw ZMQError.last("zmq_msg_init") }
        defer { zmq_msg_close(message) }
        while zmq_msg_recv(message, socket, flags) < 0 {
            let error = ZMQError.last("zmq_msg_recv")
            if error.code == EINTR { continue }
            if error.code == EAGAIN { return nil }
            throw error
        }
        let size = zmq_msg_size(message)
        let data = size == 0 ? Data() : Data(bytes: zmq_msg_data(message)!, count: size)
        var userID: String?
        var peerAddress: String?
        if metadata {
            userID = zmq_msg_gets(message, "User-Id").map { String(cString: $0) }
            peerAddress = zmq_msg_gets(message, "Peer-Address").map { String(cString: $0) }
        }
        return (data, zmq_msg_more(message) != 0, userID, peerAddress)
    }

    // MARK: Subscriptions (SUB sockets)

    /// Receive messages whose first frame starts with `prefix` (empty: everything).
    public func subscribe(_ prefix: Data = Data()) throws { try set(.subscribe, prefix) }
    public func subscribe(_ prefix: String) throws { try set(.subscribe, Data(prefix.utf8)) }
    /// Undoes one matching `subscribe`.
    public func unsubscribe(_ prefix: Data = Data()) throws { try set(.unsubscribe, prefix) }
    public func unsubscribe(_ prefix: String) throws { try set(.unsubscribe, Data(prefix.utf8)) }
}

/// A received message with its connection's metadata.
public struct ReceivedMessage: Sendable, Equatable {
    public let frames: [Data]
    /// The ZAP user id the peer was admitted with (for CURVE through `ZAPHandler`: the Z85 text
    /// of the client's public key, which a peer cannot forge); nil without ZAP.
    public let userID: String?
    /// The peer's IP address (TCP); nil for other transports.
    public let peerAddress: String?
}

@available(*, unavailable, message: "ZeroMQ sockets are not thread-safe; own them on one thread (see SocketLoop)")
extension Socket: Sendable {}
