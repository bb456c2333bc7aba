import Foundation
import Testing
@testable import ZeroMQ

/// Deterministic pseudo-random bytes (xorshift64*), so a failing byte-exactness check can be reproduced.
func pseudoRandomBytes(count: Int, seed: UInt64) -> Data {
    var state = seed | 1
    var bytes = [UInt8](repeating: 0, count: count)
    for index in bytes.indices {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        bytes[index] = UInt8(truncatingIfNeeded: (state &* 0x2545F4914F6CDD1D) >> 56)
    }
    return Data(bytes)
}

/// A socket bound to a wildcard loopback port, with linger 0 (tests never wait on close).
func boundSocket(_ context: Context, _ type: SocketType, configure: (Socket) throws -> Void = { _ in }) throws -> (Socket, String) {
    let socket = try Socket(context, type: type)
    try socket.set(.linger, .zero)
    try configure(socket)
    try socket.bind("tcp://127.0.0.1:*")
    return (socket, try socket.lastEndpoint)
}

func connectedSocket(_ context: Context, _ type: SocketType, to endpoint: String,
                     configure: (Socket) throws -> Void = { _ in }) throws -> Socket {
    let socket = try Socket(context, type: type)
    try socket.set(.linger, .zero)
    try configure(socket)
    try socket.connect(endpoint)
    return socket
}

func text(_ string: String) -> Data { Data(string.utf8) }

/// A fresh empty directory under the system temporary directory.
func temporaryDirectory() throws -> String {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("zeromq-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func fileMode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as! NSNumber).intValue
}
