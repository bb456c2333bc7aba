import Foundation
import Testing
@testable import ZeroMQ

@Suite struct SocketTests {
    @Test func routerDealerRoundTripIsByteExactWithIdentitiesEmptyFramesAndFiveMegabytes() throws {
        let context = try Context()
        let (router, endpoint) = try boundSocket(context, .router)
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        #expect(!endpoint.hasSuffix(":0") && !endpoint.hasSuffix(":*"))
        let first = try connectedSocket(context, .dealer, to: endpoint) { try $0.set(.routingID, text("worker-1")) }
        let second = try connectedSocket(context, .dealer, to: endpoint) { try $0.set(.routingID, Data([1, 0, 255])) }

        let big = pseudoRandomBytes(count: 5_000_000, seed: 42)
        let message = [Data(), text("hello"), Data([0, 255, 0]), big, Data()]
        #expect(try first.send(message))
        #expect(try second.send([text("from second")]))

        var received: [Data: [Data]] = [:]
        for _ in 0..<2 {
            let frames = try #require(try router.receive(timeout: .seconds(10)))
            received[frames[0]] = Array(frames.dropFirst())
        }
        #expect(received[text("worker-1")] == message)
        #expect(received[Data([1, 0, 255])] == [text("from second")])

        // Replies are routed by the identity frame the caller puts first.
        try router.send([Data([1, 0, 255]), Data(), text("to second")])
        try router.send([text("worker-1"), big])
        #expect(try second.receive(timeout: .seconds(5)) == [Data(), text("to second")])
        #expect(try first.receive(timeout: .seconds(10)) == [big])
        #expect(try first.receive(dontWait: true) == nil)
    }

    @Test func singleFrameSendsBuildOneMultipartMessage() throws {
        let context = try Context()
        let (pull, endpoint) = try boundSocket(context, .pull)
        let push = try connectedSocket(context, .push, to: endpoint)
        try push.send(text("a"), more: true)
        try push.send(Data(), more: true)
        try push.send(text("c"))
        #expect(try pull.receive(timeout: .seconds(5)) == [text("a"), Data(), text("c")])
        #expect(throws: ZMQError.self) { try push.send([]) }
    }

    @Test func routerMandatoryReportsUnknownPeers() throws {
        let context = try Context()
        let (router, _) = try boundSocket(context, .router) { try $0.set(.routerMandatory, true) }
        let error = try #require(throws: ZMQError.self) { try router.send([text("nobody"), text("x")]) }
        #expect(error.code == ZMQError.hostUnreachableCode)
        #expect(!error.message.isEmpty)

        let (lenient, _) = try boundSocket(context, .router)
        #expect(try lenient.send([text("nobody"), text("x")]))  // silently dropped by libzmq
    }

    @Test func publisherSubscriberTopicFiltersAfterTheSlowJoinerSettles() throws {
        let context = try Context()
        let (publisher, endpoint) = try boundSocket(context, .publisher)
        let subscriber = try connectedSocket(context, .subscriber, to: endpoint)
        try subscriber.subscribe("trial.")

        // Slow joiner: the subscription reaches the publisher some time after connect. Publish
        // probes until one arrives (bounded), then the filter is in place.
        let deadline = ContinuousClock.now + .seconds(10)
        var joined = false
        while !joined && ContinuousClock.now < deadline {
            try publisher.send([text("trial.probe"), Data()])
            joined = try subscriber.receive(timeout: .milliseconds(50)) != nil
        }
        #expect(joined)
        while try subscriber.receive(timeout: .milliseconds(50)) != nil {}  // drain extra probes

        for index in 0..<5 {
            try publisher.send([text("worker.\(index)"), text("no")])
            try publisher.send([text("trial.\(index)"), text("yes \(index)")])
        }
        try publisher.send([text("trial.end"), Data()])
        var seen: [[Data]] = []
        while let frames = try subscriber.receive(timeout: .seconds(5)) {
            seen.append(frames)
            if frames[0] == text("trial.end") { break }
        }
        #expect(seen.map { $0[0] } == (0..<5).map { text("trial.\($0)") } + [text("trial.end")])
        #expect(seen.dropLast().map { $0[1] } == (0..<5).map { text("yes \($0)") })

        // Unsubscribing stops delivery (again after the unsubscription reaches the publisher).
        try subscriber.unsubscribe("trial.")
        try subscriber.subscribe("stop")
        var stopped = false
        while !stopped && ContinuousClock.now < deadline {
            try publisher.send([text("stop")])
            stopped = try subscriber.receive(timeout: .milliseconds(50)) != nil
        }
        #expect(stopped)
        while try subscriber.receive(timeout: .milliseconds(50)) != nil {}
        try publisher.send([text("trial.late")])
        #expect(try subscriber.receive(timeout: .milliseconds(200)) == nil)
    }

    @Test func maxMessageSizeDropsAnOversizedMessageAndTheConnectionGoesOn() throws {
        let context = try Context()
        let (router, endpoint) = try boundSocket(context, .router) { try $0.set(.maxMessageSize, 1000) }
        let monitor = try router.monitor(events: [.handshakeSucceeded, .disconnected])
        let dealer = try connectedSocket(context, .dealer, to: endpoint) {
            try $0.set(.routingID, text("dealer"))
            try $0.set(.reconnectInterval, .milliseconds(20))
        }
        #expect(try monitor.wait(for: .handshakeSucceeded, timeout: .seconds(5)) != nil)

        try dealer.send([pseudoRandomBytes(count: 2000, seed: 1)])
        // libzmq drops the message and the connection; the dealer reconnects by itself.
        #expect(try monitor.wait(for: .disconnected, timeout: .seconds(5)) != nil)
        #expect(try router.receive(timeout: .milliseconds(100)) == nil)

        var delivered: [Data]?
        let deadline = ContinuousClock.now + .seconds(10)
        while delivered == nil && ContinuousClock.now < deadline {
            try dealer.send([text("small")])
            delivered = try router.receive(timeout: .milliseconds(100))
        }
        #expect(delivered == [text("dealer"), text("small")])
        while let frames = try router.receive(timeout: .milliseconds(50)) {
            #expect(frames.reduce(0) { $0 + $1.count } < 1000)
        }
    }

    @Test func highWaterMarkMakesDontWaitSendsReturnFalse() throws {
        let context = try Context()
        let pull = try Socket(context, type: .pull)
        try pull.set(.receiveHighWaterMark, 1)
        try pull.bind("inproc://hwm")
        let push = try Socket(context, type: .push)
        try push.set(.sendHighWaterMark, 1)
        try push.connect("inproc://hwm")
        #expect(try push.get(.sendHighWaterMark) == 1)

        var accepted = 0
        while accepted < 100, try push.send([text("m\(accepted)")], dontWait: true) { accepted += 1 }
        #expect(accepted >= 1 && accepted < 100)
        #expect(try push.send(text("more"), dontWait: true) == false)
        // Draining the reader gives the writer credit again (libzmq passes it back asynchronously).
        var drained: [[Data]] = []
        let deadline = ContinuousClock.now + .seconds(5)
        var resumed = false
        while !resumed && ContinuousClock.now < deadline {
            while let frames = try pull.receive(dontWait: true) { drained.append(frames) }
            resumed = try push.send([text("after drain")], dontWait: true)
            if !resumed { Thread.sleep(forTimeInterval: 0.005) }
        }
        #expect(resumed)
        #expect(drained == (0..<accepted).map { [text("m\($0)")] })

        // Nothing waiting → nil, without blocking.
        let empty = try Socket(context, type: .pull)
        try empty.bind("inproc://empty")
        #expect(try empty.receive(dontWait: true) == nil)
    }

    @Test func receiveTimeoutsReturnNilInBoundedTime() throws {
        let context = try Context()
        let (socket, _) = try boundSocket(context, .pull) { try $0.set(.receiveTimeout, .milliseconds(100)) }
        #expect(try socket.get(.receiveTimeout) == .milliseconds(100))
        let clock = ContinuousClock()
        var start = clock.now
        #expect(try socket.receive() == nil)
        var waited = start.duration(to: clock.now)
        #expect(waited >= .milliseconds(90) && waited < .seconds(30))

        start = clock.now
        #expect(try socket.receive(timeout: .milliseconds(150)) == nil)
        waited = start.duration(to: clock.now)
        #expect(waited >= .milliseconds(140) && waited < .seconds(5))

        let (sender, _) = try boundSocket(context, .dealer) { try $0.set(.sendTimeout, .milliseconds(50)) }
        #expect(try sender.send([text("no peer")]) == false)  // DEALER without peers blocks → timeout
    }

    @Test func optionsRoundTripThroughGetsockopt() throws {
        let context = try Context()
        let socket = try Socket(context, type: .router)
        defer { socket.close() }
        #expect(try socket.get(.linger) == .zero)  // the Context is made with ZMQ_BLOCKY off
        try socket.set(.linger, .milliseconds(250))
        #expect(try socket.get(.linger) == .milliseconds(250))
        try socket.set(.linger, nil)
        #expect(try socket.get(.linger) == nil)
        try socket.set(.sendHighWaterMark, 7)
        try socket.set(.receiveHighWaterMark, 9)
        #expect(try socket.get(.sendHighWaterMark) == 7)
        #expect(try socket.get(.receiveHighWaterMark) == 9)
        try socket.set(.sendTimeout, .milliseconds(30))
        #expect(try socket.get(.sendTimeout) == .milliseconds(30))
        try socket.set(.receiveTimeout, nil)
        #expect(try socket.get(.receiveTimeout) == nil)
        try socket.set(.routingID, text("coordinator"))
        #expect(try socket.get(.routingID) == text("coordinator"))
        try socket.set(.immediate, true)
        #expect(try socket.get(.immediate))
        try socket.set(.heartbeatInterval, .milliseconds(1000))
        try socket.set(.heartbeatTimeout, .milliseconds(3000))
        try socket.set(.heartbeatTTL, .milliseconds(5000))
        #expect(try socket.get(.heartbeatInterval) == .seconds(1))
        #expect(try socket.get(.heartbeatTimeout) == .seconds(3))
        #expect(try socket.get(.heartbeatTTL) == .seconds(5))
        try socket.set(.maxMessageSize, 1 << 20)
        #expect(try socket.get(.maxMessageSize) == 1 << 20)
        try socket.set(.reconnectInterval, .milliseconds(100))
        try socket.set(.reconnectIntervalMax, .seconds(5))
        #expect(try socket.get(.reconnectInterval) == .milliseconds(100))
        #expect(try socket.get(.reconnectIntervalMax) == .seconds(5))
        try socket.set(.handshakeInterval, .seconds(2))
        #expect(try socket.get(.handshakeInterval) == .seconds(2))
        try socket.set(.tcpKeepalive, true)
        try socket.set(.tcpKeepaliveIdle, .seconds(60))
        try socket.set(.tcpKeepaliveInterval, .seconds(10))
        try socket.set(.tcpKeepaliveCount, 4)
        #expect(try socket.get(.tcpKeepalive) == true)
        #expect(try socket.get(.tcpKeepaliveIdle) == .seconds(60))
        #expect(try socket.get(.tcpKeepaliveInterval) == .seconds(10))
        #expect(try socket.get(.tcpKeepaliveCount) == 4)
        try socket.set(.zapDomain, "bambo")
        #expect(try socket.get(.zapDomain) == "bambo")
        try socket.set(.routerMandatory, true)
        try socket.set(.routerHandover, true)
        let keys = try CurveKeyPair.generate()
        try socket.makeCurveServer(secretKey: keys.secretKey)
        #expect(try socket.get(.curveServer))
        #expect(try socket.get(.curveSecretKey) == keys.secretKey)

        // libzmq's own refusals come back as ZMQError with errno and text.
        let negative = try #require(throws: ZMQError.self) { try socket.set(.heartbeatInterval, .milliseconds(-5)) }
        #expect(negative.code == ZMQError.invalidArgumentCode)
        let writeOnly = try #require(throws: ZMQError.self) { try socket.get(.subscribe) }
        #expect(writeOnly.code == ZMQError.invalidArgumentCode)
        #expect(writeOnly.description.contains("ZMQ_SUBSCRIBE"))
    }

    @Test func errorsCarryErrnoTextAndOperation() throws {
        let context = try Context()
        let socket = try Socket(context, type: .dealer)
        let error = try #require(throws: ZMQError.self) { try socket.bind("tcp://127.0.0.1:not-a-port") }
        #expect(error.operation.contains("tcp://127.0.0.1:not-a-port"))
        #expect(!error.message.isEmpty)
        #expect(error.code != 0)
        socket.close()
        #expect(socket.isClosed)
        let closed = try #require(throws: ZMQError.self) { try socket.send([Data()]) }
        #expect(closed.code == ENOTSOCK)
    }

    @Test func unbindAndDisconnect() throws {
        let context = try Context()
        let (pull, endpoint) = try boundSocket(context, .pull)
        let push = try connectedSocket(context, .push, to: endpoint)
        try push.send([text("one")])
        #expect(try pull.receive(timeout: .seconds(5)) == [text("one")])
        try push.disconnect(endpoint)
        try pull.unbind(endpoint)
        #expect(throws: ZMQError.self) { try pull.unbind(endpoint) }
    }

    @Test func pollerReportsOnlyReadableSocketsAndTimesOut() throws {
        let context = try Context()
        let (quiet, _) = try boundSocket(context, .pull)
        let (busy, busyEndpoint) = try boundSocket(context, .pull)
        let push = try connectedSocket(context, .push, to: busyEndpoint)
        let poller = Poller([quiet, busy])

        let clock = ContinuousClock()
        let start = clock.now
        #expect(try poller.poll(timeout: .milliseconds(100)).isEmpty)
        #expect(start.duration(to: clock.now) >= .milliseconds(90))

        try push.send([text("wake")])
        let readable = try poller.poll(timeout: .seconds(5))
        #expect(readable.count == 1 && readable[0] === busy)
        #expect(try busy.receive(dontWait: true) == [text("wake")])
        poller.remove(busy)
        #expect(poller.sockets.count == 1)
    }

    @Test func contextShutdownInterruptsBlockedReceives() async throws {
        let context = try Context()
        let socket = try Socket(context, type: .pull)
        try socket.bind("inproc://shutdown")
        let box = SendableSocketBox(socket)
        let waiter = Thread {
            let error = (try? box.socket.receive()) == nil
            box.result.withLock { $0 = error }
            box.socket.close()
        }
        waiter.start()
        try await Task.sleep(for: .milliseconds(50))
        context.shutdown()
        let deadline = ContinuousClock.now + .seconds(5)
        while box.result.withLock({ $0 }) == nil && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(box.result.withLock { $0 } == true)
    }
}

/// Moves one socket to one other thread for a test (the test thread no longer touches it).
final class SendableSocketBox: @unchecked Sendable {
    let socket: Socket
    let result = Locked<Bool?>(nil)
    init(_ socket: Socket) { self.socket = socket }
}
