import CZeroMQ
import Foundation

/// One event of a monitored socket (`zmq_socket_monitor`): connections, handshakes, disconnections.
public struct SocketEvent: Sendable, Equatable, CustomStringConvertible {
    public struct Kind: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let connected = Kind(rawValue: UInt16(ZMQ_EVENT_CONNECTED))
        public static let connectDelayed = Kind(rawValue: UInt16(ZMQ_EVENT_CONNECT_DELAYED))
        public static let connectRetried = Kind(rawValue: UInt16(ZMQ_EVENT_CONNECT_RETRIED))
        public static let listening = Kind(rawValue: UInt16(ZMQ_EVENT_LISTENING))
        public static let bindFailed = Kind(rawValue: UInt16(ZMQ_EVENT_BIND_FAILED))
        public static let accepted = Kind(rawValue: UInt16(ZMQ_EVENT_ACCEPTED))
        public static let acceptFailed = Kind(rawValue: UInt16(ZMQ_EVENT_ACCEPT_FAILED))
        public static let closed = Kind(rawValue: UInt16(ZMQ_EVENT_CLOSED))
        public static let closeFailed = Kind(rawValue: UInt16(ZMQ_EVENT_CLOSE_FAILED))
        /// A connection ended (peer gone, heartbeat timeout, oversized message…).
        public static let disconnected = Kind(rawValue: UInt16(ZMQ_EVENT_DISCONNECTED))
        public static let monitorStopped = Kind(rawValue: UInt16(ZMQ_EVENT_MONITOR_STOPPED))
        public static let handshakeFailedNoDetail = Kind(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
        public static let handshakeSucceeded = Kind(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
        /// ZMTP or CURVE protocol failure (e.g. the client trusted the wrong server key).
        public static let handshakeFailedProtocol = Kind(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL))
        /// The ZAP handler refused the peer.
        public static let handshakeFailedAuth = Kind(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
        public static let all = Kind(rawValue: 0xFFFF)
    }

    public let kind: Kind
    /// Event-specific: a file descriptor, an errno, a reconnect interval or a ZMTP/ZAP status code.
    public let value: UInt32
    /// The endpoint the event concerns.
    public let endpoint: String

    public var description: String { "event 0x\(String(kind.rawValue, radix: 16)) value \(value) on \(endpoint)" }
}

/// Receives the events of a monitored socket over an `inproc` PAIR socket. Same thread rules as `Socket`.
public final class SocketMonitor {
    /// The PAIR socket events arrive on (add it to a `Poller` to wait on it with others).
    public let socket: Socket

    init(socket: Socket) { self.socket = socket }

    /// The next event, or nil if none arrives within `timeout`.
    public func next(timeout: Duration) throws -> SocketEvent? {
        guard let frames = try socket.receive(timeout: timeout) else { return nil }
        guard frames.count == 2, frames[0].count == 6 else {
            throw ZMQError(code: EPROTO, operation: "monitor event with \(frames.count) frames (expected 2, first of 6 bytes)")
        }
        let header = [UInt8](frames[0])
        let kind = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt16.self) }
        let value = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self) }
        return SocketEvent(kind: Kind(rawValue: kind), value: value, endpoint: String(decoding: frames[1], as: UTF8.self))
    }

    /// Waits until an event of one of `kinds` arrives (skipping others); nil if none within `timeout`.
    public func wait(for kinds: SocketEvent.Kind, timeout: Duration) throws -> SocketEvent? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero, let event = try next(timeout: left) else { return nil }
            if !event.kind.isDisjoint(with: kinds) { return event }
        }
    }

    typealias Kind = SocketEvent.Kind
}

extension Socket {
    /// Starts monitoring this socket (`zmq_socket_monitor`) for `events`; read them from the returned monitor.
    public func monitor(events: SocketEvent.Kind = .all) throws -> SocketMonitor {
        let endpoint = "inproc://zeromq.monitor.\(UUID().uuidString)"
        let socket = try open("zmq_socket_monitor")
        guard zmq_socket_monitor(socket, endpoint, Int32(events.rawValue)) == 0 else {
            throw ZMQError.last("zmq_socket_monitor(\(endpoint))")
        }
        let pair = try Socket(context, type: .pair)
        try pair.connect(endpoint)
        return SocketMonitor(socket: pair)
    }
}
