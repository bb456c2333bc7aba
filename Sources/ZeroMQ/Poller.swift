import CZeroMQ
import Foundation

/// Waits on several sockets at once (`zmq_poll`). Not `Sendable`: it holds sockets.
public final class Poller {
    public private(set) var sockets: [Socket]

    public init(_ sockets: [Socket] = []) { self.sockets = sockets }

    public func add(_ socket: Socket) { sockets.append(socket) }

    public func remove(_ socket: Socket) { sockets.removeAll { $0 === socket } }

    /// Waits until at least one socket has a message to receive, or `timeout` passes (nil: no limit).
    /// - Returns: the readable sockets, in the order they were added; empty on timeout.
    public func poll(timeout: Duration?) throws -> [Socket] {
        let handles = try sockets.map { try $0.open("zmq_poll") }
        return try Poller.readable(handles, timeout: timeout).map { sockets[$0] }
    }

    /// Indices of the readable handles (`ZMQ_POLLIN`). EINTR is retried with the time left.
    static func readable(_ handles: [UnsafeMutableRawPointer], timeout: Duration?) throws -> [Int] {
        var items = handles.map { zmq_pollitem_t(socket: $0, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            let waitMilliseconds: Int = deadline.map { Int(milliseconds(ContinuousClock.now.duration(to: $0))) } ?? -1
            let count = zmq_poll(&items, Int32(items.count), waitMilliseconds)
            if count >= 0 {
                return items.indices.filter { items[$0].revents & Int16(ZMQ_POLLIN) != 0 }
            }
            let error = ZMQError.last("zmq_poll")
            if error.code != EINTR { throw error }
        }
    }

    /// Waits for `events` on one socket; true if they occurred before `timeout`.
    static func wait(for socket: Socket, events: Int32, timeout: Duration) throws -> Bool {
        var item = zmq_pollitem_t(socket: try socket.open("zmq_poll"), fd: 0, events: Int16(events), revents: 0)
        let deadline = ContinuousClock.now + timeout
        while true {
            let count = zmq_poll(&item, 1, Int(milliseconds(ContinuousClock.now.duration(to: deadline))))
            if count >= 0 { return item.revents & Int16(events) != 0 }
            let error = ZMQError.last("zmq_poll")
            if error.code != EINTR { throw error }
        }
    }
}
