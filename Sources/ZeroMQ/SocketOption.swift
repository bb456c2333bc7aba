import CZeroMQ
import Foundation

/// A typed libzmq socket option: `try socket.set(.linger, .zero)`, `try socket.get(.receiveHighWaterMark)`.
///
/// Durations go to libzmq in whole milliseconds (rounded up); where libzmq uses -1 for
/// "infinite"/"default", the Swift value is `nil`. Setting a read-only option or reading a
/// write-only one fails with `EINVAL` from libzmq.
public struct SocketOption<Value>: Sendable, CustomStringConvertible {
    /// libzmq's name for it, e.g. `ZMQ_LINGER`.
    public let name: String
    /// libzmq's option number.
    public let code: Int32
    /// Bytes to offer `zmq_getsockopt`.
    let capacity: Int
    let encode: @Sendable (Value) throws -> [UInt8]
    let decode: @Sendable ([UInt8]) -> Value?

    public var description: String { name }
}

extension Socket {
    /// Sets an option (`zmq_setsockopt`).
    public func set<Value>(_ option: SocketOption<Value>, _ value: Value) throws {
        let socket = try open("zmq_setsockopt(\(option.name))")
        let bytes = try option.encode(value)
        let result = bytes.withUnsafeBytes { zmq_setsockopt(socket, option.code, $0.baseAddress, $0.count) }
        if result != 0 { throw ZMQError.last("zmq_setsockopt(\(option.name))") }
    }

    /// Reads an option (`zmq_getsockopt`).
    public func get<Value>(_ option: SocketOption<Value>) throws -> Value {
        let socket = try open("zmq_getsockopt(\(option.name))")
        var bytes = [UInt8](repeating: 0, count: option.capacity)
        var size = bytes.count
        let result = bytes.withUnsafeMutableBytes { zmq_getsockopt(socket, option.code, $0.baseAddress, &size) }
        if result != 0 { throw ZMQError.last("zmq_getsockopt(\(option.name))") }
        guard let value = option.decode(Array(bytes.prefix(size))) else {
            throw ZMQError(code: EINVAL, operation: "zmq_getsockopt(\(option.name)) returned \(size) bytes, not a \(Value.self)")
        }
        return value
    }
}

// MARK: Codecs

private func bytes<T: FixedWidthInteger>(of value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

private func integer<T: FixedWidthInteger>(_ bytes: [UInt8], as: T.Type = T.self) -> T? {
    guard bytes.count == MemoryLayout<T>.size else { return nil }
    return bytes.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
}

extension SocketOption where Value == Int32 {
    static func int32(_ name: String, _ code: Int32) -> Self {
        .init(name: name, code: code, capacity: 4, encode: { bytes(of: $0) }, decode: { integer($0) })
    }
}

extension SocketOption where Value == Int64 {
    static func int64(_ name: String, _ code: Int32) -> Self {
        .init(name: name, code: code, capacity: 8, encode: { bytes(of: $0) }, decode: { integer($0) })
    }
}

extension SocketOption where Value == Bool {
    static func bool(_ name: String, _ code: Int32) -> Self {
        .init(name: name, code: code, capacity: 4, encode: { bytes(of: Int32($0 ? 1 : 0)) },
              decode: { integer($0, as: Int32.self).map { $0 != 0 } })
    }
}

extension SocketOption where Value == Bool? {
    /// -1 ↔ nil (the system default).
    static func optionalBool(_ name: String, _ code: Int32) -> Self {
        .init(name: name, code: code, capacity: 4, encode: { bytes(of: Int32($0.map { $0 ? 1 : 0 } ?? -1)) },
              decode: { integer($0, as: Int32.self).map { $0 < 0 ? nil : $0 != 0 } })
    }
}

extension SocketOption where Value == Duration {
    /// A non-negative duration in milliseconds (or in `unit` milliseconds).
    static func duration(_ name: String, _ code: Int32, unit: Int32 = 1) -> Self {
        .init(name: name, code: code, capacity: 4,
              encode: { duration in
                  guard duration >= .zero else {
                      throw ZMQError(code: EINVAL, operation: "\(name) = \(duration) (must not be negative)")
                  }
                  return bytes(of: Int32((Int64(milliseconds(duration)) + Int64(unit) - 1) / Int64(unit)))
              },
              decode: { integer($0, as: Int32.self).map { .milliseconds(Int64($0) * Int64(unit)) } })
    }
}

extension SocketOption where Value == Duration? {
    /// nil ↔ -1 (infinite / not set / system default, depending on the option).
    static func optionalDuration(_ name: String, _ code: Int32, unit: Int32 = 1) -> Self {
        .init(name: name, code: code, capacity: 4,
              encode: { duration in
                  guard let duration else { return bytes(of: Int32(-1)) }
                  guard duration >= .zero else {
                      throw ZMQError(code: EINVAL, operation: "\(name) = \(duration) (must not be negative; nil for none)")
                  }
                  return bytes(of: Int32((Int64(milliseconds(duration)) + Int64(unit) - 1) / Int64(unit)))
              },
              decode: { integer($0, as: Int32.self).map { $0 < 0 ? nil : .milliseconds(Int64($0) * Int64(unit)) } })
    }
}

extension SocketOption where Value == Data {
    static func data(_ name: String, _ code: Int32) -> Self {
        .init(name: name, code: code, capacity: 256, encode: { Array($0) }, decode: { Data($0) })
    }
}

extension SocketOption where Value == String {
    static func string(_ name: String, _ code: Int32) -> Self {
        .init(name: name, code: code, capacity: 4096, encode: { Array($0.utf8) },
              decode: { bytes in
                  let text = bytes.last == 0 ? bytes.dropLast() : bytes[...]
                  return String(decoding: text, as: UTF8.self)
              })
    }
}

extension SocketOption where Value == CurveKey {
    static func curveKey(_ name: String, _ code: Int32) -> Self {
        .init(name: name, code: code, capacity: 32, encode: { $0.bytes }, decode: { try? CurveKey(bytes: $0) })
    }
}

extension SocketOption where Value == CurveSecretKey {
    static func curveSecretKey(_ name: String, _ code: Int32) -> Self {
        .init(name: name, code: code, capacity: 32, encode: { $0.bytes }, decode: { try? CurveSecretKey(bytes: $0) })
    }
}

// MARK: The options

extension SocketOption where Value == Duration? {
    /// How long `close()` keeps trying to deliver queued outgoing messages; nil: until delivered.
    public static var linger: Self { .optionalDuration("ZMQ_LINGER", ZMQ_LINGER) }
    /// How long a blocking send waits before returning "would block"; nil: forever (the default).
    public static var sendTimeout: Self { .optionalDuration("ZMQ_SNDTIMEO", ZMQ_SNDTIMEO) }
    /// How long a blocking receive waits before returning nil; nil: forever (the default).
    public static var receiveTimeout: Self { .optionalDuration("ZMQ_RCVTIMEO", ZMQ_RCVTIMEO) }
    /// ZMTP heartbeat timeout: a connection that receives no traffic for this long after sending a
    /// PING is closed; nil: equal to `heartbeatInterval` (libzmq's default).
    public static var heartbeatTimeout: Self { .optionalDuration("ZMQ_HEARTBEAT_TIMEOUT", ZMQ_HEARTBEAT_TIMEOUT) }
    /// Delay before reconnecting a broken connection; nil: never reconnect.
    public static var reconnectInterval: Self { .optionalDuration("ZMQ_RECONNECT_IVL", ZMQ_RECONNECT_IVL) }
    /// TCP keep-alive idle time before probing (whole seconds); nil: the system default.
    public static var tcpKeepaliveIdle: Self { .optionalDuration("ZMQ_TCP_KEEPALIVE_IDLE", ZMQ_TCP_KEEPALIVE_IDLE, unit: 1000) }
    /// TCP keep-alive probe interval (whole seconds); nil: the system default.
    public static var tcpKeepaliveInterval: Self { .optionalDuration("ZMQ_TCP_KEEPALIVE_INTVL", ZMQ_TCP_KEEPALIVE_INTVL, unit: 1000) }
}

extension SocketOption where Value == Duration {
    /// ZMTP heartbeat: send a PING on an idle connection this often; zero: off (the default).
    public static var heartbeatInterval: Self { .duration("ZMQ_HEARTBEAT_IVL", ZMQ_HEARTBEAT_IVL) }
    /// ZMTP heartbeat time-to-live announced to the peer in PINGs: the peer closes the connection
    /// when it hears nothing for this long. Rounded up to 100 ms steps by libzmq; zero: none.
    public static var heartbeatTTL: Self { .duration("ZMQ_HEARTBEAT_TTL", ZMQ_HEARTBEAT_TTL) }
    /// Upper bound of the exponential reconnect back-off; zero: always `reconnectInterval`.
    public static var reconnectIntervalMax: Self { .duration("ZMQ_RECONNECT_IVL_MAX", ZMQ_RECONNECT_IVL_MAX) }
    /// Longest time a connection may take to complete its ZMTP (and CURVE) handshake; zero: no limit.
    public static var handshakeInterval: Self { .duration("ZMQ_HANDSHAKE_IVL", ZMQ_HANDSHAKE_IVL) }
}

extension SocketOption where Value == Int32 {
    /// Most outgoing messages queued per peer before sends block (or drop, by socket type); 0: no limit.
    public static var sendHighWaterMark: Self { .int32("ZMQ_SNDHWM", ZMQ_SNDHWM) }
    /// Most incoming messages queued per peer; 0: no limit.
    public static var receiveHighWaterMark: Self { .int32("ZMQ_RCVHWM", ZMQ_RCVHWM) }
    /// TCP keep-alive probes before the connection is dropped; -1: the system default.
    public static var tcpKeepaliveCount: Self { .int32("ZMQ_TCP_KEEPALIVE_CNT", ZMQ_TCP_KEEPALIVE_CNT) }
}

extension SocketOption where Value == Int64 {
    /// Largest inbound message (all frames' bytes) a peer may send; a peer exceeding it is
    /// disconnected by libzmq and its message dropped. -1: no limit (the default).
    public static var maxMessageSize: Self { .int64("ZMQ_MAXMSGSIZE", ZMQ_MAXMSGSIZE) }
}

extension SocketOption where Value == Bool {
    /// ROUTER: sending to an unknown routing id fails with `EHOSTUNREACH` instead of dropping silently.
    public static var routerMandatory: Self { .bool("ZMQ_ROUTER_MANDATORY", ZMQ_ROUTER_MANDATORY) }
    /// ROUTER: a new connection with a routing id already in use takes it over (a reconnecting worker).
    public static var routerHandover: Self { .bool("ZMQ_ROUTER_HANDOVER", ZMQ_ROUTER_HANDOVER) }
    /// Queue messages only to completed connections (no queueing for peers still connecting).
    public static var immediate: Self { .bool("ZMQ_IMMEDIATE", ZMQ_IMMEDIATE) }
    /// Act as CURVE server (needs `curveSecretKey`; clients are checked by a `ZAPHandler`, if one runs).
    public static var curveServer: Self { .bool("ZMQ_CURVE_SERVER", ZMQ_CURVE_SERVER) }
    /// Allow IPv6 for TCP endpoints.
    public static var ipv6: Self { .bool("ZMQ_IPV6", ZMQ_IPV6) }
}

extension SocketOption where Value == Bool? {
    /// TCP keep-alive (`SO_KEEPALIVE`); nil: the system default.
    public static var tcpKeepalive: Self { .optionalBool("ZMQ_TCP_KEEPALIVE", ZMQ_TCP_KEEPALIVE) }
}

extension SocketOption where Value == Data {
    /// This socket's routing id as its ROUTER peers see it (1–255 bytes, not starting with a zero byte);
    /// set it before `connect`.
    public static var routingID: Self { .data("ZMQ_ROUTING_ID", ZMQ_ROUTING_ID) }
    /// SUB: add a topic prefix (write-only; see `Socket.subscribe`).
    public static var subscribe: Self { .data("ZMQ_SUBSCRIBE", ZMQ_SUBSCRIBE) }
    /// SUB: remove a topic prefix (write-only; see `Socket.unsubscribe`).
    public static var unsubscribe: Self { .data("ZMQ_UNSUBSCRIBE", ZMQ_UNSUBSCRIBE) }
}

extension SocketOption where Value == String {
    /// The ZAP domain sent with authentication requests (RFC 27).
    public static var zapDomain: Self { .string("ZMQ_ZAP_DOMAIN", ZMQ_ZAP_DOMAIN) }
    /// The endpoint last bound or connected, wildcards resolved (read-only).
    public static var lastEndpoint: Self { .string("ZMQ_LAST_ENDPOINT", ZMQ_LAST_ENDPOINT) }
}

extension SocketOption where Value == CurveKey {
    /// This socket's CURVE public key.
    public static var curvePublicKey: Self { .curveKey("ZMQ_CURVE_PUBLICKEY", ZMQ_CURVE_PUBLICKEY) }
    /// CURVE client: the server's public key.
    public static var curveServerKey: Self { .curveKey("ZMQ_CURVE_SERVERKEY", ZMQ_CURVE_SERVERKEY) }
}

extension SocketOption where Value == CurveSecretKey {
    /// This socket's CURVE secret key.
    public static var curveSecretKey: Self { .curveSecretKey("ZMQ_CURVE_SECRETKEY", ZMQ_CURVE_SECRETKEY) }
}

// MARK: Readiness (for event loops of your own: see `EpollPoller`)

/// What a socket can do now without blocking: libzmq's `ZMQ_EVENTS` flags.
public struct SocketEvents: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// At least one whole message can be received (`ZMQ_POLLIN`).
    public static let readable = SocketEvents(rawValue: ZMQ_POLLIN)
    /// At least one message can be sent (`ZMQ_POLLOUT`).
    public static let writable = SocketEvents(rawValue: ZMQ_POLLOUT)

    public var description: String {
        [contains(.readable) ? "readable" : nil, contains(.writable) ? "writable" : nil].compactMap { $0 }.joined(separator: "|")
    }
}

extension SocketOption where Value == SocketEvents {
    /// `ZMQ_EVENTS` (read-only): whether a message can be received or sent now. Reading it makes the
    /// socket process its pending internal commands, which also clears `fileDescriptor`'s signal.
    public static var events: Self {
        .init(name: "ZMQ_EVENTS", code: ZMQ_EVENTS, capacity: 4, encode: { bytes(of: $0.rawValue) },
              decode: { integer($0, as: Int32.self).map(SocketEvents.init(rawValue:)) })
    }
}

extension SocketOption where Value == Int32 {
    /// `ZMQ_FD` (read-only): a file descriptor, owned by libzmq, that becomes readable when the
    /// socket's `events` MAY have changed. It is edge-triggered and any call on the socket (a send,
    /// a receive, reading `events`) can consume its signal: after it fires, read `events` and
    /// receive until nothing is left, and check `events` again after every send. Never read, write
    /// or close it yourself.
    public static var fileDescriptor: Self { .int32("ZMQ_FD", ZMQ_FD) }
}
