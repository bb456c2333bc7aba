import Foundation
import Testing
@testable import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-connection TCP relay on loopback that can be frozen: it then stops moving bytes but keeps
/// both connections open, like a peer whose host hangs. Only a heartbeat can notice that.
final class FreezableProxy: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let targetPort: UInt16
    private let state = Locked<(frozen: Bool, stopped: Bool)>((false, false))
    private let finished = DispatchSemaphore(value: 0)

    init(targetPort: UInt16) throws {
        self.targetPort = targetPort
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = FreezableProxy.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 4) == 0 else { throw ZMQError(code: errno, operation: "proxy bind/listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        Thread { [self] in relay() }.start()
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    func freeze() { state.withLock { $0.frozen = true } }

    func stop() {
        state.withLock { $0.stopped = true }
        finished.wait()
    }

    private var stopped: Bool { state.withLock { $0.stopped } }
    private var frozen: Bool { state.withLock { $0.frozen } }

    private func relay() {
        defer { close(listener); finished.signal() }
        var waiting = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
        while !stopped && poll(&waiting, 1, 20) <= 0 {}
        if stopped { return }
        let client = accept(listener, nil, nil)
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var target = FreezableProxy.loopback(port: targetPort)
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        defer { close(client); close(upstream) }
        guard client >= 0, connected == 0 else { return }
        var descriptors = [pollfd(fd: client, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: upstream, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !stopped {
            if frozen { usleep(20_000); continue }
            guard poll(&descriptors, 2, 20) > 0 else { continue }
            for (from, to) in [(0, 1), (1, 0)] where descriptors[from].revents != 0 {
                let count = read(descriptors[from].fd, &buffer, buffer.count)
                if count <= 0 { return }
                var sent = 0
                while sent < count {
                    let written = buffer[sent..<count].withUnsafeBytes { write(descriptors[to].fd, $0.baseAddress, $0.count) }
                    if written <= 0 { return }
                    sent += written
                }
            }
        }
    }
}

@Suite struct HeartbeatTests {
    /// With ZMTP heartbeats on, a ROUTER drops a connection whose peer stops answering PINGs; with
    /// them off (the control) the same silent connection stays up.
    @Test(arguments: [true, false])
    func aSilentPeerIsNoticedOnlyWithHeartbeats(heartbeats: Bool) throws {
        let context = try Context()
        let (router, endpoint) = try boundSocket(context, .router) { socket in
            if heartbeats {
                try socket.set(.heartbeatInterval, .milliseconds(100))
                try socket.set(.heartbeatTimeout, .milliseconds(300))
            }
        }
        let monitor = try router.monitor(events: [.handshakeSucceeded, .disconnected])
        let port = try #require(UInt16(endpoint.split(separator: ":").last!))
        let proxy = try FreezableProxy(targetPort: port)
        defer { proxy.stop() }
        let dealer = try connectedSocket(context, .dealer, to: "tcp://127.0.0.1:\(proxy.port)") {
            try $0.set(.routingID, text("silent"))
        }
        try dealer.send([text("hello")])
        #expect(try router.receive(timeout: .seconds(5)) == [text("silent"), text("hello")])
        #expect(try monitor.wait(for: .handshakeSucceeded, timeout: .seconds(5)) != nil)

        proxy.freeze()
        let disconnect = try monitor.wait(for: .disconnected, timeout: heartbeats ? .seconds(5) : .milliseconds(1500))
        #expect((disconnect != nil) == heartbeats)
    }
}
