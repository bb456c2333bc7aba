import BamboProtocol
import Foundation
import ZeroMQ

/// The worker's end of a BAMBO/1 connection: a DEALER socket whose routing id is the worker name,
/// sending and receiving typed messages through `WireCodec`. Used by tests, benchmarks and workers.
/// Not thread-safe: use it from one thread.
public final class WorkerPeer {
    public let name: String
    public let socket: Socket

    /// Connects to `endpoint`. `curve`: this worker's key pair and the coordinator's public key.
    public init(context: Context, name: String, endpoint: String, curve: (keyPair: CurveKeyPair, serverKey: CurveKey)? = nil) throws {
        self.name = name
        socket = try Socket(context, type: .dealer)
        try socket.set(.routingID, Data(name.utf8))
        try socket.set(.linger, .zero)
        try socket.set(.maxMessageSize, Int64(WireFormat.maxFrameBytes))
        if let curve { try socket.makeCurveClient(keyPair: curve.keyPair, serverKey: curve.serverKey) }
        try socket.connect(endpoint)
    }

    /// Sends a message (encoded and checked by the codec).
    public func send(_ message: Message) throws {
        try sendFrames(try WireCodec.encode(message))
    }

    /// Sends raw frames (for tests of bad input).
    public func sendFrames(_ frames: [Data]) throws {
        guard try socket.send(frames, dontWait: true) else { throw ZMQError(code: ZMQError.wouldBlockCode, operation: "send to coordinator") }
    }

    /// The next message from the coordinator within `timeout`, nil if none came. A message the codec
    /// rejects is thrown as its `ProtocolError`.
    public func receive(timeout: Duration) throws -> Message? {
        guard let frames = try socket.receive(timeout: timeout) else { return nil }
        return try WireCodec.decode(frames: frames, from: .coordinator)
    }

    /// Receives until `match` returns a value or `timeout` passes (other messages are dropped).
    public func receive<T>(timeout: Duration, until match: (Message) -> T?) throws -> T? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let message = try receive(timeout: ContinuousClock.now.duration(to: deadline)) else { return nil }
            if let value = match(message) { return value }
        }
        return nil
    }

    public func close() { socket.close() }
}
