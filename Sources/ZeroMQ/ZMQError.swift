import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error reported by libzmq: the `errno` value it set, the operation that failed, and libzmq's
/// own text for the code (`zmq_strerror`).
public struct ZMQError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The `errno` value (POSIX codes, or libzmq's own such as `ETERM`; see the static codes below).
    public let code: Int32
    /// What was being done, e.g. `"zmq_bind(tcp://127.0.0.1:5555)"`.
    public let operation: String
    /// `zmq_strerror(code)`.
    public let message: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
        self.message = String(cString: zmq_strerror(code))
    }

    /// The error libzmq just reported on this thread (`zmq_errno()`).
    static func last(_ operation: @autoclosure () -> String) -> ZMQError {
        ZMQError(code: zmq_errno(), operation: operation())
    }

    public var description: String { "\(operation) failed: \(message) (errno \(code))" }

    /// `EAGAIN`: a non-blocking call would have blocked, or a send/receive timeout expired.
    public static var wouldBlockCode: Int32 { EAGAIN }
    /// `ETERM`: the socket's context was shut down or terminated.
    public static var contextTerminatedCode: Int32 { czmq_ETERM }
    /// `EHOSTUNREACH`: a ROUTER with router-mandatory set was given an unknown routing id.
    public static var hostUnreachableCode: Int32 { czmq_EHOSTUNREACH }
    /// `EFSM`: the operation is not allowed in the socket's current state (e.g. REQ sending twice).
    public static var invalidStateCode: Int32 { czmq_EFSM }
    /// `EINVAL`: an invalid argument (unknown option, wrong option size, malformed endpoint…).
    public static var invalidArgumentCode: Int32 { EINVAL }

    public var isWouldBlock: Bool { code == EAGAIN }
    public var isContextTerminated: Bool { code == czmq_ETERM }
}
